import { keepPageConnected } from "./live-socket.js";

const ENDED = { 4401: "Signed out · reload the page", default: "No longer available · reload the page" };

export function startOverview(root, htmx) {
  keepPageConnected(root, htmx, { ended: ENDED });
}
