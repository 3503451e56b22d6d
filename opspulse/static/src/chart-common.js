// What the dashboard's charts share: axis and grid colours that read on a light and a
// dark panel alike, the axis font, money in the store's currency, the x axis's look, and
// the drawn plot with its tooltip.
import uPlot from "uplot";

export const AXIS = "#64748b";
export const GRID = "rgb(148 163 184 / 0.15)";
export const FONT = "11px ui-sans-serif, system-ui, -apple-system, 'Segoe UI', sans-serif";

/** Full and compact formatters for amounts in `currency` (a plain number if the browser does not know it). */
export function moneyFormatters(currency) {
  const make = (options) => {
    try {
      return new Intl.NumberFormat(undefined, { style: "currency", currency, ...options });
    } catch {
      return new Intl.NumberFormat(undefined, options);
    }
  };
  return { full: make({}), compact: make({ notation: "compact", maximumFractionDigits: 1 }) };
}

function hasSales(u) {
  return u.data.slice(1).some((series) => series.some((value) => value > 0));
}

/** The y scale of both charts: from zero, with headroom above the highest value. */
export const moneyScale = { range: (u, min, max) => [0, max > 0 ? max * 1.12 : 1] };

/** The y axis of both charts: compact amounts on a light grid. */
export function moneyAxis(money) {
  return {
    stroke: AXIS,
    font: FONT,
    size: 56,
    gap: 6,
    grid: { stroke: GRID, width: 1 },
    ticks: { show: false },
    // Without sales, a scale of fractions of a unit would only be noise.
    values: (u, splits) => splits.map((v) => (v === 0 || hasSales(u) ? money.compact.format(v) : "")),
  };
}

/** The x axis of both charts: labels without grid lines, plus what `settings` adds. */
export function xAxis(settings) {
  return { stroke: AXIS, font: FONT, size: 30, gap: 6, grid: { show: false }, ...settings };
}

/**
 * One chart's uPlot and its tooltip. htmx can replace the chart's mount: `release` drops a
 * plot drawn in a mount that is gone, so the next `draw` starts afresh.
 */
export class ChartPlot {
  constructor() {
    this.plot = null;
    this.tooltip = null;
  }

  release(mount) {
    if (this.plot && !mount.contains(this.plot.root)) {
      this.plot.destroy();
      this.plot = null;
    }
  }

  draw(mount, options, data) {
    this.plot = new uPlot(options, data, mount);
    this.tooltip = document.createElement("div");
    this.tooltip.className = "chart-tooltip left-0 top-0";
    this.plot.over.appendChild(this.tooltip);
    new ResizeObserver(() => {
      if (this.plot) this.plot.setSize({ width: mount.clientWidth, height: mount.clientHeight });
    }).observe(mount);
  }

  hideTooltip() {
    this.tooltip.classList.remove("is-visible");
  }

  /** Show `rows` (HTML lines) beside the cursor, kept inside the plot. */
  showTooltip(u, rows) {
    const tooltip = this.tooltip;
    tooltip.innerHTML = rows.join("<br>");
    const left = Math.min(u.cursor.left + 12, u.over.clientWidth - tooltip.offsetWidth);
    tooltip.style.transform = `translate(${Math.max(left, 0)}px, 4px)`;
    tooltip.classList.add("is-visible");
  }
}
