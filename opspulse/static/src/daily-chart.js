import uPlot from "uplot";

import { ChartPlot, moneyAxis, moneyFormatters, moneyScale, xAxis } from "./chart-common.js";

const BAR = "#6366f1";
const PREVIOUS = "#94a3b8";

const view = new ChartPlot();
let drawnData = null;
let lastDrawn = null;
let chart = null;

// Dates are local dates of the store ("2026-03-29"); shown as such, never shifted by the browser's zone.
function dayLabel(iso, withWeekday = false) {
  const [year, month, day] = iso.split("-").map(Number);
  const date = new Date(Date.UTC(year, month - 1, day));
  const options = { month: "short", day: "numeric", timeZone: "UTC" };
  if (withWeekday) options.weekday = "short";
  return new Intl.DateTimeFormat(undefined, options).format(date);
}

function options(mount, money) {
  const bars = uPlot.paths.bars({ size: [0.7, 40], align: 0 });
  return {
    width: mount.clientWidth,
    height: mount.clientHeight,
    padding: [12, 12, 0, 4],
    legend: { show: false },
    cursor: { y: false, drag: { x: false, y: false }, points: { show: false } },
    scales: {
      x: { time: false, range: (u) => [-0.5, u.data[0].length - 0.5] },
      y: moneyScale,
    },
    axes: [
      xAxis({
        ticks: { show: false },
        splits: (u) => {
          const count = u.data[0].length;
          const room = Math.max(Math.floor(u.width / 70), 1);
          const step = Math.max(Math.ceil(count / room), 1);
          const splits = [];
          for (let i = count - 1; i >= 0; i -= step) splits.unshift(i);
          return splits;
        },
        values: (u, splits) => splits.map((i) => (chart.days[i] ? dayLabel(chart.days[i]) : "")),
      }),
      moneyAxis(money),
    ],
    series: [
      {},
      {
        label: "Revenue",
        stroke: BAR,
        fill: BAR,
        width: 0,
        paths: bars,
        points: { show: false },
      },
      { label: "Previous period", stroke: PREVIOUS, width: 1.5, dash: [4, 4], points: { show: false } },
    ],
    hooks: { setCursor: [(u) => showTooltip(u, money)] },
  };
}

function showTooltip(u, money) {
  const index = u.cursor.idx;
  if (index == null || u.cursor.left < 0 || !chart.days[index]) {
    view.hideTooltip();
    return;
  }
  const orders = chart.orders[index];
  const rows = [
    `<strong class="font-medium">${dayLabel(chart.days[index], true)}</strong>`,
    `${money.full.format(u.data[1][index])} · ${orders} order${orders === 1 ? "" : "s"}`,
  ];
  // No previous period when the store's history does not cover it.
  if (chart.previous) {
    const previous = `${dayLabel(chart.previous_days[index], true)}: ${money.full.format(chart.previous[index])}`;
    rows.push(`<span class="text-slate-300">${previous}</span>`);
  }
  view.showTooltip(u, rows);
}

/** Today's revenue and orders as the live KPIs show them, if they are of the chart's today. */
function liveToday() {
  if (!chart?.today) return null;
  const revenue = document.querySelector("#kpi-revenue[data-kpi-raw]");
  const orders = document.querySelector("#kpi-orders[data-kpi-raw]");
  if (!revenue || revenue.dataset.kpiDay !== chart.today) return null;
  return {
    revenue: Number(revenue.dataset.kpiRaw),
    orders: orders && orders.dataset.kpiDay === chart.today ? Number(orders.dataset.kpiRaw) : null,
  };
}

function chartData() {
  const revenue = chart.revenue.slice();
  const index = chart.today ? chart.days.indexOf(chart.today) : -1;
  const live = index >= 0 ? liveToday() : null;
  if (live && Number.isFinite(live.revenue)) {
    revenue[index] = live.revenue;
    if (live.orders !== null && Number.isFinite(live.orders)) chart.orders[index] = live.orders;
  }
  return [chart.days.map((_, i) => i), revenue, chart.previous ?? chart.days.map(() => null)];
}

/** The period's totals and the empty-chart note, once today's bar has followed the live KPIs. */
function showTotals(panel, revenue) {
  if (!liveToday()) return; // as rendered: the server's figures stand
  const money = moneyFormatters(chart.currency);
  const total = revenue.reduce((sum, value) => sum + value, 0);
  const orders = chart.orders.reduce((sum, value) => sum + value, 0);
  const totalCell = panel.querySelector("[data-daily-total]");
  const ordersCell = panel.querySelector("[data-daily-orders]");
  if (totalCell) totalCell.textContent = money.full.format(total);
  if (ordersCell) ordersCell.textContent = new Intl.NumberFormat().format(orders);
  if (total > 0) panel.querySelector("[data-daily-empty]")?.remove();
}

/** Draw the daily chart, or update it: a new range, or today's bar after a live frame. */
export function drawDailyChart() {
  const panel = document.getElementById("daily-chart");
  const mount = panel?.querySelector("[data-daily-mount]");
  if (!mount) return;
  view.release(mount);
  const raw = panel.dataset.daily;
  if (!view.plot || raw !== drawnData) {
    drawnData = raw;
    chart = JSON.parse(raw);
  }
  const data = chartData();
  const drawnKey = `${raw}|${data[1].join()}`;
  if (drawnKey !== lastDrawn) showTotals(panel, data[1]);
  if (view.plot) {
    // Most frames change other panels: redraw only when a bar moved.
    if (drawnKey !== lastDrawn) view.plot.setData(data);
    lastDrawn = drawnKey;
    return;
  }
  lastDrawn = drawnKey;
  const money = moneyFormatters(chart.currency);
  view.draw(mount, options(mount, money), data);
}
