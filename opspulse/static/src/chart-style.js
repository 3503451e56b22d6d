// What the dashboard's charts share: axis and grid colours that read on a light and a
// dark panel alike, and the axis font.
export const AXIS = "#64748b";
export const GRID = "rgb(148 163 184 / 0.15)";
export const FONT = "11px ui-sans-serif, system-ui, -apple-system, 'Segoe UI', sans-serif";
