import { ChartPlot, GRID, moneyAxis, moneyFormatters, moneyScale, xAxis } from "./chart-common.js";

const TODAY = "#4f46e5";
const YESTERDAY = "#94a3b8";

const view = new ChartPlot();
let drawnData = null;
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
      xAxis({
        ticks: { stroke: GRID, size: 4 },
        splits: (u) => hourSplits(u.width < 480 ? 6 : 3),
        values: (u, splits) => splits.map(tickLabel),
      }),
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
    view.hideTooltip();
    return;
  }
  const [today, yesterday] = u.data.slice(1).map((series) => series[index]);
  const rows = [`<strong class="font-medium">${current.labels[index] ?? ""}</strong>`];
  if (today != null) rows.push(`Today ${money.full.format(today)}`);
  if (yesterday != null) rows.push(`<span class="text-slate-300">Yesterday ${money.full.format(yesterday)}</span>`);
  view.showTooltip(u, rows);
}

/** Draw the revenue chart, or update it if its panel's data changed since the last draw. */
export function drawRevenueChart() {
  const panel = document.getElementById("revenue-chart");
  const mount = panel?.querySelector("[data-chart-mount]");
  if (!mount) return;
  view.release(mount);
  const raw = panel.dataset.chart;
  if (view.plot && raw === drawnData) return;
  drawnData = raw;
  current = JSON.parse(raw);
  const data = [current.x, current.today, current.yesterday];
  if (view.plot) {
    // This also sets the x scale again: the day turning can make it 23 or 25 hours long.
    view.plot.setData(data);
    return;
  }
  const money = moneyFormatters(current.currency);
  view.draw(mount, options(mount, money), data);
}
