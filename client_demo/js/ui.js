// Small DOM helpers shared by the views: element builder, number formats,
// readable error messages and toasts.

import { icon } from "./icons.js";

/**
 * Build an element. `props` keys: `class`, `text`, `dataset`, `attrs`, and
 * any `on<event>` handler; the rest are set as properties.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "attrs") {
      for (const [name, v] of Object.entries(value)) node.setAttribute(name, v);
    } else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else node[key] = value;
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

const integer = new Intl.NumberFormat("en-US");
export const fmt = (n) => integer.format(Number(n) || 0);

/**
 * Show a new count in `node`; when it went up, float a "+N" next to it so a
 * person notices (diamonds arriving, coins bought).
 */
export function setCount(node, value) {
  const next = Number(value) || 0;
  const before = node.dataset.value === undefined ? null : Number(node.dataset.value);
  node.dataset.value = String(next);
  node.textContent = fmt(next);
  if (before === null || next <= before) return;
  const parent = node.parentElement;
  if (!parent) return;
  parent.classList.add("has-delta");
  const delta = el("span", { class: "delta", text: `+${fmt(next - before)}`, attrs: { "aria-hidden": "true" } });
  delta.addEventListener("animationend", () => delta.remove());
  parent.append(delta);
}

const money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
export const dollars = (cents) => money.format((Number(cents) || 0) / 100);

/** 200 diamonds are one dollar (docs/economy.md). */
export const diamondsToCents = (diamonds) => Math.floor((Number(diamonds) || 0) / 2);

export function formatDate(unixSeconds) {
  if (!unixSeconds) return "";
  return new Date(unixSeconds * 1000).toLocaleDateString("en-US", {
    month: "short",
    day: "numeric",
    year: "numeric",
  });
}

/**
 * A fresh idempotency key for one user action. crypto.randomUUID() only
 * exists in secure contexts (https, localhost); a page opened over plain
 * http on a LAN address falls back to getRandomValues.
 */
export function newKey() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The gift's inline SVG icon (see icons.js), as an element; `cls` is added to it. */
export const giftIcon = (gift, cls = "gift-icon") => icon(gift, cls);

/** "finger_heart" -> "Finger Heart", "im_very_rich" -> "I'm Very Rich". */
export function giftName(gift) {
  if (gift === "im_very_rich") return "I'm Very Rich";
  return String(gift)
    .split(/[_-]+/)
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join(" ");
}

/** Threshold (coins in one gift event) for the full-room animation. */
export const BIG_GIFT_COINS = 1000;

const ERROR_TITLES = {
  bad_request: "That request was not valid",
  unauthorized: "Please log in again",
  forbidden: "Not allowed",
  not_found: "Not found",
  not_live: "This room is not live",
  insufficient_funds: "Not enough balance",
  out_of_stock: "Sold out",
  limit_exceeded: "Daily spending limit reached",
  rate_limited: "Slow down a little",
  idempotency_conflict: "That action was already used differently",
  muted: "You are muted in this room",
  banned: "You are banned from this room",
  slow_mode: "Slow mode is on",
  box_closed: "Too late: the box already opened",
  age_restricted: "Age restricted",
  unavailable: "The server is busy, try again",
  internal: "Something went wrong on the server",
  offline: "Not connected",
  timeout: "No answer from the server",
  http: "The server could not be reached",
};

const ERROR_HINTS = {
  insufficient_funds: "Buy a coin package to top up.",
  not_live: "Pick another room from the list.",
  rate_limited: "Wait a second before trying again.",
  unavailable: "Nothing was charged twice; try again.",
  offline: "Reconnecting automatically…",
  age_restricted: "Watching and chatting stay open to you; nothing was charged.",
};

/** Human title + detail for an error reply `{code, message}`. */
export function describeError(error) {
  const code = error?.code ?? "internal";
  const title = ERROR_TITLES[code] ?? `Error: ${code}`;
  const parts = [];
  // The server's message is one sentence, often without a full stop; a hint follows it.
  if (error?.message) parts.push(String(error.message).replace(/([^.!?…])$/, "$1."));
  if (ERROR_HINTS[code]) parts.push(ERROR_HINTS[code]);
  return { code, title, detail: parts.join(" ") };
}

const recentToasts = new Map();

/**
 * Show a toast. Errors use role=alert so screen readers announce them;
 * identical toasts within two seconds are merged.
 */
export function toast(kind, title, detail = "", { timeout = 6000 } = {}) {
  const box = document.getElementById("toasts");
  if (!box) return null;
  const signature = `${kind}|${title}|${detail}`;
  const now = Date.now();
  if (now - (recentToasts.get(signature) ?? 0) < 2000) return null;
  recentToasts.set(signature, now);

  const node = el(
    "div",
    {
      class: `toast toast-${kind}`,
      attrs: { role: kind === "error" ? "alert" : "status", "data-testid": `toast-${kind}` },
    },
    el("div", { class: "toast-body" }, el("strong", { class: "toast-title", text: title }),
      detail ? el("p", { class: "toast-detail", text: detail }) : null),
    el("button", {
      type: "button",
      class: "toast-close",
      text: "×",
      attrs: { "aria-label": "Dismiss message" },
      onclick: () => node.remove(),
    }),
  );
  box.append(node);
  while (box.children.length > 4) box.firstElementChild.remove();
  if (timeout) setTimeout(() => node.remove(), timeout);
  return node;
}

export function showError(error, context = "") {
  const { title, detail } = describeError(error);
  return toast("error", context ? `${context}: ${title}` : title, detail);
}

/** Run an async action with its button disabled; errors become toasts. */
export async function withBusy(button, context, action) {
  if (button) {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
  }
  try {
    return await action();
  } catch (error) {
    showError(error, context);
    return undefined;
  } finally {
    if (button) {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }
}
