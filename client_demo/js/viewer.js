// The viewer's controls: the list of live rooms, coin packages, the gift
// panel and subscribing. The room itself is drawn by RoomView.

import { $, el, fmt, dollars, giftIcon, giftName, formatDate, newKey, toast, withBusy, showError } from "./ui.js";
import { icon } from "./icons.js";

const ROOMS_REFRESH_MS = 8000;

export class ViewerControls {
  constructor(app, roomView) {
    this.app = app;
    this.roomView = roomView;
    this.rooms = [];
    this.timer = null;
    $("#rooms-refresh").addEventListener("click", (e) => this.refreshRooms(e.currentTarget));
    $("#leave-btn").addEventListener("click", () => this.leave());
    $("#back-btn").addEventListener("click", () => this.leave());
    $("#subscribe-btn").addEventListener("click", (e) => this.subscribe(e.currentTarget));
    roomView.onChange((info) => {
      this.renderSubscription(info);
      // A room that opened or closed changes the list of live rooms.
      const live = info ? Boolean(info.live) : null;
      if (this.wasLive !== undefined && live !== this.wasLive && this.client?.ready) this.refreshRooms(null, true);
      this.wasLive = live;
    });
  }

  get client() {
    return this.app.client;
  }

  /** Called after every successful hello. */
  async ready() {
    await this.refreshRooms();
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      if (this.client?.ready && document.visibilityState !== "hidden") this.refreshRooms(null, true);
    }, ROOMS_REFRESH_MS);
  }

  stop() {
    clearInterval(this.timer);
  }

  setCatalog(catalog) {
    this.renderPackages(catalog.packages ?? []);
    this.renderGifts(catalog.gifts ?? []);
  }

  // ---- rooms ---------------------------------------------------------------

  async refreshRooms(button = null, quiet = false) {
    const run = async () => {
      this.rooms = await this.client.requestAll("rooms", "rooms");
      this.renderRooms();
    };
    if (quiet) {
      try {
        await run();
      } catch {
        // background refresh: the next one will try again
      }
      return;
    }
    await withBusy(button, "Loading rooms", run);
  }

  renderRooms() {
    const list = $("#room-list");
    const current = this.roomView.room;
    list.replaceChildren(...this.rooms.map((r) => {
      const here = r.room === current;
      const title = r.title || r.room;
      const watching = `${fmt(r.viewers)} watching`;
      // The whole card is one button: a tap anywhere on it joins the room.
      return el("li", { class: `room-item${here ? " current" : ""}`, dataset: { room: r.room }, attrs: { "data-testid": "room-item" } },
        el("button", {
          type: "button",
          class: "room-card",
          disabled: here,
          title: `${title} · @${r.creator} · ${watching}`,
          attrs: { "aria-label": `${here ? "Watching" : "Join"} ${title} by ${r.creator}, ${watching}` },
          onclick: (e) => this.join(r.room, e.currentTarget),
        },
        el("span", { class: "avatar small", text: (r.creator || "?").charAt(0).toUpperCase() }),
        el("span", { class: "room-info" },
          el("strong", { class: "room-title", text: title }),
          el("span", { class: "room-meta", text: `@${r.creator}` }),
          // The count and the join pill share the last line: the title gets the full width.
          el("span", { class: "room-foot" },
            el("span", { class: "room-viewers", attrs: { "data-testid": "room-viewers" } },
              icon("eye", "inline-icon"), ` ${watching}`),
            el("span", { class: `room-join${here ? " here" : ""}`, text: here ? "Watching" : "Join" })))));
    }));
    $("#rooms-empty").hidden = this.rooms.length > 0;
  }

  async join(room, button) {
    if (this.roomView.room && this.roomView.room !== room) {
      const old = this.roomView.room;
      this.client.request("leave", { room: old }).catch(() => {});
    }
    await withBusy(button, "Joining", async () => {
      try {
        await this.roomView.join(room);
      } catch (error) {
        this.roomView.reset(null);
        this.roomView.setStageState("empty");
        throw error;
      }
      this.app.saveRoom(room);
    });
    this.renderRooms();
    // On a phone, focusing the box would pop the keyboard over the room.
    if (window.matchMedia("(min-width: 721px)").matches) $("#chat-input").focus({ preventScroll: true });
  }

  async leave() {
    await this.roomView.leave();
    this.app.saveRoom(null);
    this.renderRooms();
    this.refreshRooms(null, true);
  }

  // ---- coins -----------------------------------------------------------------

  renderPackages(packages) {
    // The accessible name is the visible text plus hidden words: "Buy 65 coins for $0.99".
    $("#packages").replaceChildren(...packages.map((p) => el("button", {
      type: "button",
      class: "package",
      dataset: { package: p.package },
      onclick: (e) => this.buyCoins(p, e.currentTarget),
    },
    el("span", { class: "package-coins" }, el("span", { class: "sr-only", text: "Buy " }),
      el("span", { class: "coin", attrs: { "aria-hidden": "true" } }), ` ${fmt(p.coins)}`,
      el("span", { class: "sr-only", text: " coins for " })),
    el("span", { class: "package-price", text: dollars(p.cents) }))));
  }

  async buyCoins(pkg, button) {
    // The receipt is the payment proof and the idempotency key: fresh per click.
    const receipt = `demo-${newKey()}`;
    await withBusy(button, "Buying coins", async () => {
      const reply = await this.client.request("buy_coins", { package: pkg.package, receipt }, { retry: true });
      this.app.onWallet({ coins: reply.coins });
      toast("success", `+${fmt(pkg.coins)} coins`, `Balance: ${fmt(reply.coins)} coins`, { timeout: 3000 });
    });
  }

  // ---- gifts -----------------------------------------------------------------

  renderGifts(gifts) {
    // Accessible name: "Send Rose for 1 coins" (visible text plus hidden words).
    $("#gift-panel").replaceChildren(...gifts.map((g) => el("button", {
      type: "button",
      class: `gift-btn${g.coins >= 1000 ? " big" : ""}`,
      dataset: { gift: g.gift },
      title: `${giftName(g.gift)}: ${fmt(g.coins)} coins`,
      onclick: () => this.sendGift(g),
    },
    giftIcon(g.gift),
    el("span", { class: "gift-name" }, el("span", { class: "sr-only", text: "Send " }), giftName(g.gift)),
    el("span", { class: "gift-price" }, el("span", { class: "sr-only", text: " for " }),
      el("span", { class: "coin", attrs: { "aria-hidden": "true" } }), ` ${fmt(g.coins)}`,
      el("span", { class: "sr-only", text: " coins" })))));
  }

  async sendGift(g) {
    const room = this.roomView.room;
    if (!room || !this.roomView.info?.live) {
      toast("info", "Join a live room first", "Pick a room from the list to send gifts.");
      return;
    }
    // Not disabled while pending: a streak is quick taps, each its own key.
    try {
      const reply = await this.client.request("gift", { room, gift: g.gift, count: 1, key: newKey() }, { retry: true });
      if (typeof reply.coins === "number") this.app.onWallet({ coins: reply.coins });
    } catch (error) {
      showError(error, `Sending ${giftName(g.gift)}`);
    }
  }

  // ---- subscription ----------------------------------------------------------

  renderSubscription(info) {
    const button = $("#subscribe-btn");
    const status = $("#sub-status");
    if (!info) {
      button.disabled = true;
      button.textContent = "Subscribe";
      status.textContent = "Not subscribed";
      status.dataset.active = "no";
      return;
    }
    const until = info.subscribedUntil ?? 0;
    const active = until * 1000 > Date.now();
    // A renewal costs the active tier's price (js/subs.js), a new subscription tier 1's.
    const cost = active && info.subTier ? info.subTiers?.[info.subTier - 1] ?? info.subPrice : info.subPrice;
    const price = cost
      ? [" · ", el("span", { class: "coin", attrs: { "aria-hidden": "true" } }), ` ${fmt(cost)}`] : [];
    button.disabled = false;
    button.replaceChildren(active ? "Extend 30 days" : `Subscribe to @${info.creator}`, ...price);
    status.textContent = active ? `Subscribed until ${formatDate(until)}` : "Not subscribed";
    status.dataset.active = active ? "yes" : "no";
    this.roomView.renderChatMode();
  }

  async subscribe(button) {
    const room = this.roomView.room;
    if (!room) return;
    await withBusy(button, "Subscribing", async () => {
      const reply = await this.client.request("subscribe", { room, key: newKey() }, { retry: true });
      this.app.subs.afterSubscribe(reply); // tier, months, what was charged; its toast
      this.app.refreshWallet();
    });
  }
}
