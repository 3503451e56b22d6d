// What the dashboard's charts share: axis and grid colours that read on a light and a
// dark panel alike, the axis font, and money in the store's currency.
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
