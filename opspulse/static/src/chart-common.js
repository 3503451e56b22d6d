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
