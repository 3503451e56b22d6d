import htmx from "htmx.org";
import "htmx-ext-ws";
import { Idiomorph } from "idiomorph/htmx";

import { startLiveDashboard } from "./live.js";

// The dashboard runs under a CSP without 'unsafe-eval' or inline styles, and fragments
// from the server never carry scripts.
htmx.config.allowEval = false;
htmx.config.allowScriptTags = false;
htmx.config.includeIndicatorStyles = false;

// The chart's canvas belongs to uPlot: morphing its panel must leave it alone.
Idiomorph.defaults.callbacks.beforeNodeMorphed = (oldNode) =>
  !(oldNode.nodeType === Node.ELEMENT_NODE && oldNode.hasAttribute("data-chart-mount"));

// Deferred, so the document is parsed; htmx connects the socket on DOMContentLoaded,
// after these listeners are in place.
const root = document.getElementById("live-root");
if (root) startLiveDashboard(root, htmx);
