// The server's clock on the page: countdowns are drawn from the times the server
// sends (`left_ms`, `ends`, `opens_at`, `until`), never from the page's own idea of
// when something ends.

/** How long an ended match, hype train or opened box stays on screen (ms). */
export const RESULT_LINGER_MS = 20000;

/** "m:ss" for a number of milliseconds (never negative). */
export function clock(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
