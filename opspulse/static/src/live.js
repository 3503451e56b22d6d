import { drawDailyChart } from "./daily-chart.js";
import { Patcher } from "./live-patch.js";
import { drawRevenueChart } from "./revenue-chart.js";

const LABELS = {
  connecting: "Connecting…",
  live: "Live",
  history: "History only",
  reconnecting: "Reconnecting…",
  ended: "Signed out · reload the page",
};
// Close codes the htmx ws extension retries on its own (with jittered backoff).
const RETRIED_BY_EXTENSION = [1006, 1011, 1012, 1013];
// 4401: session ended; 4403: not (or no longer) a member of the store's account.
const ACCESS_ENDED = [4401, 4403];
const SIGNED_OUT = 4401;
// The server sends a heartbeat every 30 s; silence beyond this means a dead socket.
const SILENCE_LIMIT_MS = 75_000;
const POLL_INTERVAL_MS = 30_000;
const FIRST_POLL_DELAY_MS = 5_000;

export function startLiveDashboard(root, htmx) {
  const status = document.getElementById("live-status");
  const label = status.querySelector("[data-live-label]");
  const snapshotUrl = root.dataset.snapshotUrl;
  const reduceMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  let socketWrapper = null;
  // Sockets dropped by a forced reconnect close late; their close says nothing about the new one.
  const retiredSockets = new WeakSet();
  let socket = null;
  let lastFrameAt = Date.now();
  let pollTimer = null;
  const seenOrders = new Set();
  const orderStatuses = new Map();
  const kpiValues = new Map();
  const patcher = new Patcher();

  // A disconnected store's page shows its history: connected, but nothing is live.
  const disconnected = "disconnected" in status.dataset;

  let currentState = "connecting";

  function setState(state) {
    currentState = state;
    const shown = disconnected && state === "live" ? "history" : state;
    status.dataset.state = shown;
    label.textContent = LABELS[shown];
  }

  function afterPanelsChanged({ highlight }) {
    drawRevenueChart();
    // Today's bar follows the revenue KPI of the frame.
    drawDailyChart();
    for (const row of document.querySelectorAll("#order-feed [data-order-number]")) {
      const number = row.dataset.orderNumber;
      const status = row.dataset.orderStatus;
      if (seenOrders.has(number)) {
        // A status change (paid → fulfilled, a cancellation, a refund) flashes its row.
        const before = orderStatuses.get(number);
        orderStatuses.set(number, status);
        if (highlight && before !== undefined && before !== status && !reduceMotion) {
          row.animate(
            [{ backgroundColor: "rgb(254 243 199)" }, { backgroundColor: "rgb(254 243 199 / 0)" }],
            { duration: 2500, easing: "ease-out" },
          );
        }
        continue;
      }
      seenOrders.add(number);
      orderStatuses.set(number, status);
      if (highlight && !reduceMotion) {
        row.animate(
          [{ backgroundColor: "rgb(224 231 255)" }, { backgroundColor: "rgb(224 231 255 / 0)" }],
          { duration: 2500, easing: "ease-out" },
        );
      }
    }
    for (const value of document.querySelectorAll("[data-kpi-value]")) {
      const id = value.closest("[id]").id;
      const previous = kpiValues.get(id);
      kpiValues.set(id, value.textContent);
      if (highlight && previous !== undefined && previous !== value.textContent && !reduceMotion) {
        value.animate([{ color: "rgb(79 70 229)" }, { color: "inherit" }], { duration: 1200, easing: "ease-out" });
      }
    }
  }

  // New orders arrive as single rows prepended to today's list; the feed keeps its
  // size (the server's view of it does the same) and shows each order once.
  function trimFeed() {
    const feed = document.getElementById("order-feed");
    if (!feed) return;
    const size = Number(feed.dataset.feedSize) || 20;
    const seen = new Set();
    const rows = [];
    for (const row of feed.querySelectorAll("li[data-order-number]")) {
      if (seen.has(row.id)) row.remove();
      else {
        seen.add(row.id);
        rows.push(row);
      }
    }
    for (const row of rows.slice(size)) row.remove();
    const earlier = feed.querySelector("[data-feed-earlier]");
    if (earlier && !earlier.querySelector("li")) earlier.remove();
  }

  // While the socket is down, a slow poll keeps the panels correct.
  async function poll() {
    if (document.hidden) return;
    let response;
    try {
      response = await fetch(snapshotUrl, { credentials: "same-origin", redirect: "manual" });
    } catch {
      return;
    }
    if (response.type === "opaqueredirect" || response.status === 403 || response.status === 404) {
      setState("ended");
      stopPolling();
      return;
    }
    if (!response.ok || currentState === "live") return;
    htmx.swap(root, await response.text(), { swapStyle: "none", ignoreTitle: true, swapDelay: 0, settleDelay: 0 });
    afterPanelsChanged({ highlight: true });
  }

  function startPolling() {
    if (pollTimer !== null) return;
    pollTimer = window.setTimeout(function tick() {
      poll().finally(() => {
        if (pollTimer !== null) pollTimer = window.setTimeout(tick, POLL_INTERVAL_MS);
      });
    }, FIRST_POLL_DELAY_MS);
  }

  function stopPolling() {
    window.clearTimeout(pollTimer);
    pollTimer = null;
  }

  // A password change in this browser gives its session a new key, which ends the
  // sockets opened under the old one: reconnect once with the current cookie before
  // showing the dashboard as signed out.
  let retriedAfterSignOut = false;

  root.addEventListener("htmx:wsOpen", (event) => {
    socket = event.detail.event.target;
    socketWrapper = event.detail.socketWrapper;
    patcher.reset();
    retriedAfterSignOut = false;
    lastFrameAt = Date.now();
    setState("live");
    stopPolling();
  });

  root.addEventListener("htmx:wsClose", (event) => {
    const closed = event.detail.event;
    if (retiredSockets.has(closed.target)) return;
    if (closed.code === SIGNED_OUT && !retriedAfterSignOut && event.detail.socketWrapper) {
      retriedAfterSignOut = true;
      setState("reconnecting");
      event.detail.socketWrapper.reconnect();
      return;
    }
    if (ACCESS_ENDED.includes(closed.code)) {
      setState("ended");
      return;
    }
    setState("reconnecting");
    startPolling();
    const wrapper = event.detail.socketWrapper;
    if (!RETRIED_BY_EXTENSION.includes(closed.code) && wrapper) {
      window.setTimeout(() => wrapper.reconnect(), 1000 + Math.random() * 4000);
    }
  });

  // A new range for the daily chart (its form swaps the panel).
  root.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target?.id === "daily-chart" || event.detail.elt?.id === "daily-chart") drawDailyChart();
  });

  function frameApplied() {
    lastFrameAt = Date.now();
    trimFeed();
    afterPanelsChanged({ highlight: true });
  }

  // A frame with patches (live-patch.js) is applied here: its patches, then its HTML.
  root.addEventListener("htmx:wsBeforeMessage", (event) => {
    const frame = event.detail.message;
    if (typeof frame !== "string" || !frame.startsWith("{")) return;
    event.preventDefault();
    const html = patcher.apply(frame, (request) => {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(request);
    });
    if (html) htmx.swap(root, html, { swapStyle: "none", ignoreTitle: true, swapDelay: 0, settleDelay: 0 });
    frameApplied();
  });

  root.addEventListener("htmx:wsAfterMessage", frameApplied);

  window.setInterval(() => {
    if (currentState === "live" && Date.now() - lastFrameAt > SILENCE_LIMIT_MS && socketWrapper) {
      setState("reconnecting");
      startPolling();
      lastFrameAt = Date.now();
      if (socket) retiredSockets.add(socket);
      socketWrapper.reconnect();
    }
  }, 10_000);

  afterPanelsChanged({ highlight: false });
}
