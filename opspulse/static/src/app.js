import htmx from "htmx.org";
import "htmx-ext-ws";
import { Idiomorph } from "idiomorph/htmx";

import { startLiveDashboard } from "./live.js";
import { startMenus } from "./menus.js";
import { startOverview } from "./overview.js";
import { startWallboard } from "./wallboard.js";

// The dashboard runs under a CSP without 'unsafe-eval' or inline styles, and fragments
// from the server never carry scripts.
htmx.config.allowEval = false;
htmx.config.allowScriptTags = false;
htmx.config.includeIndicatorStyles = false;
// A form the server refuses (422) comes back with its message in the panel: show it.
htmx.config.responseHandling = [
  { code: "204", swap: false },
  { code: "422", swap: true, error: false },
  { code: "[23]..", swap: true },
  { code: "[45]..", swap: false, error: true },
  { code: "...", swap: false },
];

// The chart's canvas belongs to uPlot: morphing its panel must leave it alone. The
// mount's own attributes (its label for screen readers) follow the server's.
Idiomorph.defaults.callbacks.beforeNodeMorphed = (oldNode, newNode) => {
  if (!(oldNode.nodeType === Node.ELEMENT_NODE && oldNode.hasAttribute("data-chart-mount"))) return true;
  if (newNode.nodeType === Node.ELEMENT_NODE && newNode.hasAttribute("data-chart-mount")) {
    for (const { name } of Array.from(oldNode.attributes)) {
      if (!newNode.hasAttribute(name)) oldNode.removeAttribute(name);
    }
    for (const { name, value } of Array.from(newNode.attributes)) {
      if (oldNode.getAttribute(name) !== value) oldNode.setAttribute(name, value);
    }
  }
  return false;
};

// Deferred, so the document is parsed; htmx connects the socket on DOMContentLoaded,
// after these listeners are in place.
const root = document.getElementById("live-root");
if (root) startLiveDashboard(root, htmx);

const overviewRoot = document.getElementById("overview-root");
if (overviewRoot) startOverview(overviewRoot, htmx);
const wallboardRoot = document.getElementById("wallboard-root");
if (wallboardRoot) startWallboard(wallboardRoot, htmx);
startMenus();
