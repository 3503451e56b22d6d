import { keepPageConnected } from "./live-socket.js";

const ENDED = {
  4401: "Signed out",
  4403: "No access to this store",
  4404: "This link no longer works",
  default: "Disconnected",
};

// Keep a tablet's screen on while the wallboard is visible (where the browser allows it).
async function keepScreenOn() {
  if (!("wakeLock" in navigator) || document.hidden) return;
  try {
    await navigator.wakeLock.request("screen");
  } catch {
    // Refused (battery saver, no permission): the screen may sleep.
  }
}

export function startWallboard(root, htmx) {
  keepPageConnected(root, htmx, {
    ended: ENDED,
    // Read from across the room: say plainly that the numbers stopped updating.
    onEnded: () => {
      const notice = root.querySelector("[data-ended-notice]");
      if (notice) notice.hidden = false;
    },
  });
  const button = root.querySelector("[data-fullscreen]");
  if (button) {
    if (!document.fullscreenEnabled) button.hidden = true;
    button.addEventListener("click", () => {
      if (document.fullscreenElement) document.exitFullscreen();
      else document.documentElement.requestFullscreen().catch(() => {});
    });
    document.addEventListener("fullscreenchange", () => {
      button.textContent = document.fullscreenElement ? "Exit full screen" : "Full screen";
    });
  }
  keepScreenOn();
  document.addEventListener("visibilitychange", keepScreenOn);
}
