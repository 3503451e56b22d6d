import uPlot from "uplot";

import { AXIS, FONT, GRID, moneyAxis, moneyFormatters, moneyScale } from "./chart-common.js";

const TODAY = "#4f46e5";
const YESTERDAY = "#94a3b8";

let plot = null;
let drawnData = null;
let tooltip = null;
// The chart last drawn. x is real hours since the store's midnight: a day the clocks go
// back is 25 hours long, one they go forward 23. The server sends the clock time of
// each point (`labels`) and of each whole hour (`ticks`), so no timezone rules live here.
let current = null;

/** The whole hours to mark: every `step`th hour of the clock, where that hour falls today. */
function hourSplits(step) {
  return current.ticks.filter(([, label]) => Number.parseInt(label, 10) % step === 0).map(([x]) => x);
}

function tickLabel(x) {
  const tick = current.ticks.find(([at]) => at === x);
  return tick ? tick[1] : "";
}

function options(mount, money) {
  return {
    width: mount.clientWidth,
    height: mount.clientHeight,
    padding: [12, 20, 0, 4],
    legend: { show: false },
    cursor: { y: false, drag: { x: false, y: false }, points: { size: 7, fill: "#fff", width: 2 } },
    scales: {
      x: { time: false, range: () => [0, current.length] },
      y: moneyScale,
    },
    axes: [
      {
        stroke: AXIS,
        font: FONT,
        size: 30,
        gap: 6,
        grid: { show: false },
        ticks: { stroke: GRID, size: 4 },
        splits: (u) => hourSplits(u.width < 480 ? 6 : 3),
        values: (u, splits) => splits.map(tickLabel),
      },
      moneyAxis(money),
    ],
    series: [
      {},
      { label: "Today", stroke: TODAY, width: 2, fill: "rgb(79 70 229 / 0.08)", points: { show: false } },
      { label: "Yesterday", stroke: YESTERDAY, width: 1.5, dash: [4, 4], points: { show: false } },
    ],
    hooks: {
      setCursor: [(u) => showTooltip(u, money)],
    },
  };
}

function showTooltip(u, money) {
  const index = u.cursor.idx;
  if (index == null || u.cursor.left < 0) {
    tooltip.classList.remove("is-visible");
    return;
  }
  const [today, yesterday] = u.data.slice(1).map((series) => series[index]);
  const rows = [`<strong class="font-medium">${current.labels[index] ?? ""}</strong>`];
  if (today != null) rows.push(`Today ${money.full.format(today)}`);
  if (yesterday != null) rows.push(`<span class="text-slate-300">Yesterday ${money.full.format(yesterday)}</span>`);
  tooltip.innerHTML = rows.join("<br>");
  const left = Math.min(u.cursor.left + 12, u.over.clientWidth - tooltip.offsetWidth);
  tooltip.style.transform = `translate(${Math.max(left, 0)}px, 4px)`;
  tooltip.classList.add("is-visible");
}

/** Draw the revenue chart, or update it if its panel's data changed since the last draw. */
export function drawRevenueChart() {
  const panel = document.getElementById("revenue-chart");
  const mount = panel?.querySelector("[data-chart-mount]");
  if (!mount) return;
  if (plot && !mount.contains(plot.root)) {
    plot.destroy();
    plot = null;
  }
  const raw = panel.dataset.chart;
  if (plot && raw === drawnData) return;
  drawnData = raw;
  current = JSON.parse(raw);
  const data = [current.x, current.today, current.yesterday];
  if (plot) {
    // This also sets the x scale again: the day turning can make it 23 or 25 hours long.
    plot.setData(data);
    return;
  }
  const money = moneyFormatters(current.currency);
  plot = new uPlot(options(mount, money), data, mount);
  tooltip = document.createElement("div");
  tooltip.className = "chart-tooltip left-0 top-0";
  plot.over.appendChild(tooltip);
  new ResizeObserver(() => {
    if (plot) plot.setSize({ width: mount.clientWidth, height: mount.clientHeight });
  }).observe(mount);
}
