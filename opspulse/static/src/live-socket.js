// A socket that keeps itself connected for days: the overview and the wallboard
// (overview.js, wallboard.js) start one with keepPageConnected.
//
// Every frame is a set of out-of-band fragments (hx-swap-oob="morph") that htmx morphs
// into the page, after the patches of what changed in the others, if any (live-patch.js).
// The server sends everything on each (re)connect, so a reconnect re-syncs the page; a
// socket that goes silent (no frame or heartbeat) is replaced.

import { Patcher } from "./live-patch.js";

const HEARTBEAT = "<!-- heartbeat -->";
// The first frame of a socket whose page is still current: nothing to swap.
const PAGE_CURRENT = "<!-- page current -->";
// The server sends a heartbeat every 30 s; silence beyond this means a dead socket.
const SILENCE_LIMIT_MS = 75_000;
const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 60_000;
// 4401 signed out, 4403 not (or no longer) a member, 4404 share link revoked, expired or no longer backed by an admin.
const SIGNED_OUT = 4401;
const ENDED = [4401, 4403, 4404];

export function keepConnected({ root, path, status, labels, htmx, onFrame, onEnded }) {
  const label = status?.querySelector("[data-live-label]");
  let socket = null;
  let attempts = 0;
  let retryTimer = null;
  let lastFrameAt = Date.now();
  let ended = false;
  let retriedAfterSignOut = false;
  const patcher = new Patcher();

  function setState(state, text) {
    if (!status) return;
    status.dataset.state = state;
    if (label) label.textContent = text ?? labels[state];
  }

  function url() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${window.location.host}${path}`;
  }

  function scheduleRetry() {
    if (ended || retryTimer !== null) return;
    // Exponential backoff with jitter, so screens do not all come back in the same second.
    const ceiling = Math.min(FIRST_RETRY_MS * 2 ** attempts, MAX_RETRY_MS);
    attempts += 1;
    retryTimer = window.setTimeout(() => {
      retryTimer = null;
      connect();
    }, ceiling / 2 + Math.random() * (ceiling / 2));
  }

  function connect() {
    if (ended) return;
    const current = new WebSocket(url());
    socket = current;
    current.addEventListener("open", () => {
      if (socket !== current) return;
      attempts = 0;
      lastFrameAt = Date.now();
      patcher.reset();
      setState("live");
    });
    current.addEventListener("message", (event) => {
      if (socket !== current) return;
      lastFrameAt = Date.now();
      if (typeof event.data !== "string" || event.data === HEARTBEAT || event.data === PAGE_CURRENT) return;
      retriedAfterSignOut = false;
      const html = patcher.apply(event.data, (request) => {
        if (current.readyState === WebSocket.OPEN) current.send(request);
      });
      if (html) htmx.swap(root, html, { swapStyle: "none", ignoreTitle: true, swapDelay: 0, settleDelay: 0 });
      onFrame?.();
    });
    current.addEventListener("close", (event) => {
      if (socket !== current) return;
      socket = null;
      if (event.code === SIGNED_OUT && !retriedAfterSignOut) {
        // A password change in this browser renews the session key: try once more.
        retriedAfterSignOut = true;
        setState("reconnecting");
        scheduleRetry();
        return;
      }
      if (ENDED.includes(event.code)) {
        ended = true;
        setState("ended", labels.ended[event.code] ?? labels.ended.default);
        onEnded?.(event.code);
        return;
      }
      setState("reconnecting");
      scheduleRetry();
    });
  }

  function reconnectNow() {
    if (ended || (socket && socket.readyState <= WebSocket.OPEN)) return;
    window.clearTimeout(retryTimer);
    retryTimer = null;
    attempts = 0;
    connect();
  }

  window.setInterval(() => {
    if (socket && socket.readyState === WebSocket.OPEN && Date.now() - lastFrameAt > SILENCE_LIMIT_MS) {
      const silent = socket;
      socket = null;
      silent.close();
      setState("reconnecting");
      scheduleRetry();
    }
  }, 10_000);
  // Back from sleep, or the network returned: no need to wait for the next retry.
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) reconnectNow();
  });

  connect();
}

/**
 * Keep the page under `root` connected to the socket at its `data-websocket-path`, showing the
 * socket's state in #live-status. `ended` labels the closing codes after which it gives up.
 */
export function keepPageConnected(root, htmx, { ended, onEnded }) {
  keepConnected({
    root,
    path: root.dataset.websocketPath,
    status: document.getElementById("live-status"),
    labels: { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", ended },
    htmx,
    onEnded,
  });
}
