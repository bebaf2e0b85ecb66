// Inline SVG icons for the gifts and badges, drawn from simple shapes so the
// page looks the same on a machine without an emoji font. 32x32 view box.

const SVG = (body) =>
  `<svg viewBox="0 0 32 32" width="1em" height="1em" focusable="false" aria-hidden="true" xmlns="http://www.w3.org/2000/svg">${body}</svg>`;

const HEART = "M16 28C6 21 3 16 3 11a6.5 6.5 0 0 1 13-2 6.5 6.5 0 0 1 13 2c0 5-3 10-13 17z";
const STAR = (cx, cy, r, fill) => {
  const p = [];
  for (let i = 0; i < 10; i += 1) {
    const a = (Math.PI / 5) * i - Math.PI / 2;
    const d = i % 2 ? r * 0.45 : r;
    p.push(`${(cx + d * Math.cos(a)).toFixed(1)},${(cy + d * Math.sin(a)).toFixed(1)}`);
  }
  return `<polygon points="${p.join(" ")}" fill="${fill}"/>`;
};

const ICONS = {
  rose: SVG(`<path d="M16 17v12" stroke="#2f9e44" stroke-width="2.4" stroke-linecap="round"/>
    <path d="M16 24c-4 0-7-2-8-5 4-1 7 1 8 5z" fill="#40c057"/>
    <path d="M16 22c3-1 6-3 7-6-4 0-6 2-7 6z" fill="#37b24d"/>
    <path d="M7 8c0 6 4 10 9 10s9-4 9-10c-2 1-4 1-5 0-1-3-3-5-4-5s-3 2-4 5c-1 1-3 1-5 0z" fill="#e03131"/>
    <path d="M12 9c1 3 3 4 4 4s3-1 4-4c-2 1-3 1-4-1-1 2-2 2-4 1z" fill="#ff6b6b"/>`),
  finger_heart: SVG(`<path d="M11 30v-8l-3-5c-1-2 1-3 2-2l3 3V9c0-1.5 2.5-1.5 2.5 0v7l5-6c1-1 3 0 2 2l-4 6 3 1c1 .5 1 2 0 3l-3 4v4z" fill="#ffc078" stroke="#d9480f" stroke-width="1"/>
    <path d="M23 9c-3-2-5-4-5-6a2 2 0 0 1 4-.5A2 2 0 0 1 26 3c0 2-1 4-3 6z" fill="#f03e3e"/>`),
  panda: SVG(`<circle cx="8" cy="8" r="4.5" fill="#212529"/><circle cx="24" cy="8" r="4.5" fill="#212529"/>
    <circle cx="16" cy="17" r="12" fill="#f8f9fa"/>
    <ellipse cx="11" cy="16" rx="3.2" ry="4" transform="rotate(-25 11 16)" fill="#212529"/>
    <ellipse cx="21" cy="16" rx="3.2" ry="4" transform="rotate(25 21 16)" fill="#212529"/>
    <circle cx="11.5" cy="15.5" r="1.2" fill="#fff"/><circle cx="20.5" cy="15.5" r="1.2" fill="#fff"/>
    <ellipse cx="16" cy="22" rx="2.6" ry="1.8" fill="#212529"/>`),
  rainbow_puke: SVG(`<path d="M2 26a14 14 0 0 1 28 0" fill="none" stroke="#f03e3e" stroke-width="3"/>
    <path d="M5 26a11 11 0 0 1 22 0" fill="none" stroke="#fd7e14" stroke-width="3"/>
    <path d="M8 26a8 8 0 0 1 16 0" fill="none" stroke="#fab005" stroke-width="3"/>
    <path d="M11 26a5 5 0 0 1 10 0" fill="none" stroke="#40c057" stroke-width="3"/>
    <path d="M14 26a2 2 0 0 1 4 0" fill="none" stroke="#4dabf7" stroke-width="3"/>
    <ellipse cx="5" cy="27" rx="4" ry="2.5" fill="#f1f3f5"/><ellipse cx="27" cy="27" rx="4" ry="2.5" fill="#f1f3f5"/>`),
  concert: SVG(`<rect x="12" y="2" width="8" height="14" rx="4" fill="#868e96"/>
    <path d="M13 5h6M13 8h6M13 11h6" stroke="#495057" stroke-width="1.2"/>
    <path d="M9 13a7 7 0 0 0 14 0" fill="none" stroke="#ced4da" stroke-width="2"/>
    <path d="M16 20v7M11 29h10" stroke="#ced4da" stroke-width="2.4" stroke-linecap="round"/>
    <path d="M25 4l3-2M26 8h4" stroke="#fcc419" stroke-width="1.6" stroke-linecap="round"/>`),
  im_very_rich: SVG(`<path d="M12 6h8l-2 4h-4z" fill="#c08a3e"/><path d="M11 5h10" stroke="#8d5a1c" stroke-width="2" stroke-linecap="round"/>
    <path d="M14 10h4c6 3 10 8 10 13 0 4-3 6-12 6S4 27 4 23c0-5 4-10 10-13z" fill="#e2a84b"/>
    <text x="16" y="25" text-anchor="middle" font-family="DejaVu Sans, Arial, sans-serif" font-weight="700" font-size="12" fill="#2b8a3e">$</text>`),
  drama_queen: SVG(`<path d="M3 10l6 5 7-10 7 10 6-5-3 16H6z" fill="#fcc419" stroke="#e67700" stroke-width="1.2" stroke-linejoin="round"/>
    <rect x="6" y="24" width="20" height="4" rx="1" fill="#f59f00"/>
    <circle cx="16" cy="18" r="2.2" fill="#e64980"/><circle cx="10" cy="20" r="1.5" fill="#4dabf7"/><circle cx="22" cy="20" r="1.5" fill="#4dabf7"/>
    <circle cx="3" cy="10" r="1.8" fill="#fcc419"/><circle cx="29" cy="10" r="1.8" fill="#fcc419"/><circle cx="16" cy="5" r="1.8" fill="#fcc419"/>`),
  interstellar: SVG(`<circle cx="16" cy="16" r="14" fill="#1b1f3b"/>
    <path d="M16 16c0-5 6-7 9-3M16 16c5 0 7 6 3 9M16 16c0 5-6 7-9 3M16 16c-5 0-7-6-3-9" fill="none" stroke="#b197fc" stroke-width="2.4" stroke-linecap="round"/>
    <circle cx="16" cy="16" r="2.5" fill="#fff3bf"/>
    ${STAR(7, 8, 1.8, "#fff")}${STAR(25, 24, 1.6, "#fff")}${STAR(25, 7, 1.2, "#a5d8ff")}`),
  planet: SVG(`<circle cx="16" cy="16" r="9" fill="#ff922b"/>
    <path d="M9 13c4 1 10 1 14 0M8 18c5 1 11 1 16 0" stroke="#e8590c" stroke-width="1.6" fill="none"/>
    <ellipse cx="16" cy="16" rx="15" ry="4.5" transform="rotate(-18 16 16)" fill="none" stroke="#ffd8a8" stroke-width="2"/>`),
  rocket: SVG(`<path d="M16 2c6 4 8 11 6 19H10C8 13 10 6 16 2z" fill="#e9ecef" stroke="#868e96" stroke-width="1"/>
    <circle cx="16" cy="12" r="3" fill="#4dabf7" stroke="#1971c2" stroke-width="1"/>
    <path d="M10 15l-5 6v4l6-3zM22 15l5 6v4l-6-3z" fill="#f03e3e"/>
    <path d="M12 21h8l-1 3h-6z" fill="#868e96"/>
    <path d="M13 24c0 3 1.5 5 3 7 1.5-2 3-4 3-7z" fill="#ff922b"/><path d="M14.5 24c0 2 .7 3 1.5 4.5.8-1.5 1.5-2.5 1.5-4.5z" fill="#ffe066"/>`),
  lion: SVG(`<circle cx="16" cy="16" r="14" fill="#d9480f"/>
    <circle cx="16" cy="17" r="9.5" fill="#ffa94d"/>
    <circle cx="9" cy="9" r="2.5" fill="#ffa94d"/><circle cx="23" cy="9" r="2.5" fill="#ffa94d"/>
    <circle cx="12.5" cy="15" r="1.4" fill="#212529"/><circle cx="19.5" cy="15" r="1.4" fill="#212529"/>
    <ellipse cx="16" cy="21" rx="4" ry="3" fill="#ffe8cc"/>
    <path d="M14.5 19.5h3l-1.5 1.8z" fill="#5c2d0e"/><path d="M16 21.3v1.2M14 23c1 .8 3 .8 4 0" stroke="#5c2d0e" stroke-width="1" fill="none"/>`),
  universe: SVG(`<circle cx="16" cy="16" r="14" fill="#12163a"/>
    <path d="M4 26L20 12" stroke="#74c0fc" stroke-width="3" stroke-linecap="round" opacity=".55"/>
    <path d="M7 25L20 13" stroke="#e7f5ff" stroke-width="1.4" stroke-linecap="round"/>
    ${STAR(21, 11, 6, "#ffd43b")}${STAR(8, 8, 1.5, "#fff")}${STAR(26, 24, 1.3, "#e599f7")}${STAR(12, 20, 1, "#fff")}`),
  gift: SVG(`<rect x="4" y="13" width="24" height="16" rx="2" fill="#f03e3e"/>
    <rect x="2" y="9" width="28" height="6" rx="2" fill="#ff6b6b"/>
    <rect x="14" y="9" width="4" height="20" fill="#ffd43b"/>
    <path d="M16 9c-3-5-8-6-9-3s5 3 9 3c4 0 10 0 9-3s-6-2-9 3z" fill="none" stroke="#ffd43b" stroke-width="2"/>`),
  camera: SVG(`<rect x="2" y="9" width="20" height="15" rx="3" fill="#4dabf7"/>
    <path d="M22 14l8-4v13l-8-4z" fill="#1971c2"/>
    <circle cx="8" cy="6" r="3" fill="#adb5bd"/><circle cx="16" cy="6" r="3" fill="#adb5bd"/>
    <circle cx="7" cy="14" r="2" fill="#fe2c55"/>`),
  eye: SVG(`<path d="M2 16c4-7 9-10 14-10s10 3 14 10c-4 7-9 10-14 10S6 23 2 16z" fill="#f1f3f5"/>
    <circle cx="16" cy="16" r="6" fill="#4dabf7"/><circle cx="16" cy="16" r="3" fill="#212529"/><circle cx="18" cy="14" r="1.2" fill="#fff"/>`),
  heart: SVG(`<path d="${HEART}" fill="#fe2c55"/>`),
  gem: SVG(`<path d="M9 4h14l6 8-13 17L3 12z" fill="#66d9e8"/>
    <path d="M3 12h26M9 4l3 8 4 17 4-17 3-8M12 12l4-8 4 8" fill="none" stroke="#1098ad" stroke-width="1.2" stroke-linejoin="round"/>`),
  bag: SVG(`<path d="M5 10h22l-2 19H7z" fill="#fe2c55"/>
    <path d="M11 13V8a5 5 0 0 1 10 0v5" fill="none" stroke="#862e9c" stroke-width="2.4" stroke-linecap="round"/>
    <path d="M12 20c2 2 6 2 8 0" fill="none" stroke="#fff" stroke-width="2" stroke-linecap="round"/>`),
  pin: SVG(`<path d="M16 30l-2-10h4z" fill="#868e96"/>
    <path d="M10 4h12l-2 6 4 6v3H8v-3l4-6z" fill="#fa5252"/>`),
  party: SVG(`<path d="M3 29l7-19 12 12z" fill="#fcc419" stroke="#e67700" stroke-width="1"/>
    <path d="M6 21l5 5M8 15l9 9" stroke="#f03e3e" stroke-width="2"/>
    <circle cx="22" cy="6" r="2" fill="#4dabf7"/><circle cx="27" cy="14" r="1.6" fill="#e64980"/><circle cx="15" cy="4" r="1.4" fill="#40c057"/>
    <path d="M19 12c2-3 5-3 7-2M20 17c3-1 6 0 8 2" fill="none" stroke="#be4bdb" stroke-width="1.8" stroke-linecap="round"/>`),
  coin: SVG(`<circle cx="16" cy="16" r="13" fill="#ffc83d" stroke="#d99100" stroke-width="2"/>
    <circle cx="16" cy="16" r="8" fill="none" stroke="#fff3b0" stroke-width="1.6"/>`),
  // LIVE mechanics: match, goal, hype train, treasure box, moderation
  swords: SVG(`<path d="M5 3l16 16-2 2L3 5V3z" fill="#dee2e6" stroke="#868e96" stroke-width="1"/>
    <path d="M27 3L11 19l2 2L29 5V3z" fill="#dee2e6" stroke="#868e96" stroke-width="1"/>
    <path d="M8 22l4 4M24 22l-4 4" stroke="#fe2c55" stroke-width="3" stroke-linecap="round"/>
    <path d="M5 27l3-3M27 27l-3-3" stroke="#c08a3e" stroke-width="3" stroke-linecap="round"/>`),
  flag: SVG(`<path d="M7 3v27" stroke="#ced4da" stroke-width="2.4" stroke-linecap="round"/>
    <path d="M8 4h18l-4 6 4 6H8z" fill="#2bd576"/>`),
  train: SVG(`<rect x="5" y="6" width="22" height="17" rx="4" fill="#c77dff"/>
    <rect x="8" y="9" width="7" height="6" rx="1" fill="#e5dbff"/><rect x="17" y="9" width="7" height="6" rx="1" fill="#e5dbff"/>
    <circle cx="10" cy="26" r="3" fill="#495057"/><circle cx="22" cy="26" r="3" fill="#495057"/>
    <path d="M14 2h4v4h-4z" fill="#ffd43b"/>`),
  chest: SVG(`<path d="M4 14h24v14H4z" fill="#c08a3e" stroke="#8d5a1c" stroke-width="1.2"/>
    <path d="M4 14a12 9 0 0 1 24 0z" fill="#e0a458" stroke="#8d5a1c" stroke-width="1.2"/>
    <rect x="13" y="12" width="6" height="7" rx="1" fill="#ffd43b" stroke="#8d5a1c" stroke-width="1"/>`),
  lock: SVG(`<path d="M10 14v-4a6 6 0 0 1 12 0v4" fill="none" stroke="#adb5bd" stroke-width="3"/>
    <rect x="6" y="14" width="20" height="15" rx="3" fill="#fcc419" stroke="#e67700" stroke-width="1.2"/>
    <circle cx="16" cy="21" r="2.2" fill="#8d5a1c"/>`),
  film: SVG(`<rect x="3" y="6" width="26" height="20" rx="3" fill="#4c6ef5"/>
    <path d="M13 11v10l8-5z" fill="#fff"/>
    <path d="M6 8v2M6 14v2M6 20v2M26 8v2M26 14v2M26 20v2" stroke="#dbe4ff" stroke-width="2" stroke-linecap="round"/>`),
  shield: SVG(`<path d="M16 2l12 5v8c0 7-5 12-12 15C9 27 4 22 4 15V7z" fill="#4dabf7" stroke="#1864ab" stroke-width="1.2"/>
    <path d="M11 16l4 4 7-8" fill="none" stroke="#fff" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round"/>`),
};

const MEDAL_COLORS = [["#ffd43b", "#e67700"], ["#dee2e6", "#868e96"], ["#ffa94d", "#a0522d"]];

for (const [i, [fill, edge]] of MEDAL_COLORS.entries()) {
  ICONS[`medal${i + 1}`] = SVG(`<path d="M9 2h5l3 9h-5zM23 2h-5l-3 9h5z" fill="#4dabf7"/>
    <circle cx="16" cy="20" r="10" fill="${fill}" stroke="${edge}" stroke-width="2"/>
    <text x="16" y="24.5" text-anchor="middle" font-family="DejaVu Sans, Arial, sans-serif" font-weight="700" font-size="12" fill="${edge}">${i + 1}</text>`);
}

/** Names of every icon drawn here (the gift catalogue ones and the badges). */
export const ICON_NAMES = Object.keys(ICONS);

/**
 * An icon element: `<span class="icon …">` holding an inline SVG, hidden from
 * screen readers (the text next to it says what it is). Unknown names fall
 * back to the gift box.
 */
export function icon(name, extraClass = "") {
  const span = document.createElement("span");
  span.className = `icon${extraClass ? ` ${extraClass}` : ""}`;
  span.dataset.icon = ICONS[name] ? name : "gift";
  span.setAttribute("aria-hidden", "true");
  span.innerHTML = ICONS[name] ?? ICONS.gift;
  return span;
}

/** Fill every static `<span data-icon="name">` of the page with its SVG. */
export function fillIcons(root = document) {
  for (const node of root.querySelectorAll("[data-icon]:empty")) {
    node.innerHTML = ICONS[node.dataset.icon] ?? ICONS.gift;
    node.classList.add("icon");
    node.setAttribute("aria-hidden", "true");
  }
}
