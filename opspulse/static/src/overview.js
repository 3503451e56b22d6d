import { keepConnected } from "./live-socket.js";

const LABELS = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  ended: { 4401: "Signed out · reload the page", default: "No longer available · reload the page" },
};

export function startOverview(root, htmx) {
  keepConnected({
    root,
    path: root.dataset.websocketPath,
    status: document.getElementById("live-status"),
    labels: LABELS,
    htmx,
  });
}
