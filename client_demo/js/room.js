// The room on screen (the "stage"), shared by the viewer and creator views:
// joining, catching up after a reconnect with `join since`, applying room
// events in seq order, and drawing the feed, streaks, hearts, big gifts,
// leaderboard and pinned product.

import {
  $, el, fmt, giftIcon, giftName, BIG_GIFT_COINS, showError, toast, newKey, withBusy,
} from "./ui.js";
import { icon } from "./icons.js";
import { subText, tierBadge } from "./subs.js";

const FEED_LIMIT = 200;
const STREAK_LINGER_MS = 4000;
const MAX_STREAKS = 3;
const MAX_HEARTS_PER_EVENT = 8;
const STALE_EVENT_MS = 15000; // replayed events older than this get no animation

export class RoomView {
  /**
   * @param {object} app  shared context: client, me(), role, onWallet(), products
   */
  constructor(app) {
    this.app = app;
    this.room = null; // the id of the room on screen
    this.info = null; // last join result merged with events
    this.lastSeq = new Map(); // room -> last seq applied (kept across leave/rejoin)
    this.streaks = new Map(); // "from|gift" -> {node, combo, timer}
    this.feedStreaks = new Map(); // "from|gift" -> the feed line of the running streak
    this.bigQueue = [];
    this.bigBusy = false;
    this.listeners = new Set();
    this.bindControls();
  }

  /** Subscribe to changes of room state (used by the role views). */
  onChange(fn) {
    this.listeners.add(fn);
  }

  changed() {
    for (const fn of this.listeners) fn(this.info);
  }

  get client() {
    return this.app.client;
  }

  bindControls() {
    $("#chat-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.sendChat();
    });
    $("#like-btn").addEventListener("click", () => this.like());
    $("#stage-screen").addEventListener("dblclick", (e) => {
      if (e.target.closest("button, a, input, .pinned")) return;
      this.like();
    });
    $("#pinned-buy").addEventListener("click", (e) => this.buyPinned(e.currentTarget));
  }

  // ---- joining ----------------------------------------------------------

  /** Join `room`; `catchUp` replays missed events with `since`. */
  async join(room, { catchUp = false } = {}) {
    const since = this.lastSeq.get(room);
    const args = { room };
    const replay = catchUp && room === this.room && since !== undefined;
    if (replay) args.since = since;
    if (!replay && room !== this.room) this.reset(room);
    this.room = room;
    if (!replay) this.setStageState("joining");
    const reply = await this.client.request("join", args);
    if (this.room !== room) return reply;
    this.applyJoin(reply, replay);
    return reply;
  }

  /** Re-join the current room after a reconnect, asking only for what was missed. */
  async rejoin() {
    if (!this.room) return;
    try {
      await this.join(this.room, { catchUp: true });
    } catch (error) {
      showError(error, "Rejoining the room");
    }
  }

  /**
   * Ask for the events missed after a seq gap. Returns false when the event
   * should be applied anyway (a resync just ran and the gap is still there).
   */
  resync(room) {
    if (this.resyncing) return true;
    const now = Date.now();
    if (now - (this.lastResync ?? 0) < 5000) {
      console.warn("livesrv: seq gap again right after a resync; going on");
      return false;
    }
    this.lastResync = now;
    this.resyncing = true;
    this.join(room, { catchUp: true })
      .catch((error) => showError(error, "Catching up"))
      .finally(() => {
        this.resyncing = false;
      });
    return true;
  }

  async leave() {
    const room = this.room;
    if (!room) return;
    this.reset(null);
    this.setStageState("empty");
    this.changed();
    try {
      await this.client.request("leave", { room });
    } catch (error) {
      if (error.code !== "offline") showError(error, "Leaving the room");
    }
  }

  reset(room) {
    this.room = room;
    this.info = null;
    $("#feed").replaceChildren();
    $("#streaks").replaceChildren();
    $("#hearts").replaceChildren();
    for (const s of this.streaks.values()) clearTimeout(s.timer);
    this.streaks.clear();
    this.feedStreaks.clear();
    this.bigQueue = [];
    $("#big-gift").hidden = true;
    this.renderHeader();
    this.renderTop([]);
    this.renderPinned(null);
    $("#ended-banner").hidden = true;
    for (const x of this.app.extras ?? []) x.reset();
  }

  applyJoin(reply, replay) {
    const room = reply.room ?? this.room;
    const known = this.lastSeq.get(room);
    if (!replay) {
      // A fresh join starts at the room's current seq: older events are history.
      this.lastSeq.set(room, Math.max(known ?? 0, reply.seq ?? 0));
    } else if (reply.gap) {
      // The log no longer holds everything we missed: the replay that follows
      // starts later than our last seq. Accept that jump once, and say so.
      this.allowJump = room;
      this.feedSystem("Some activity while you were away could not be replayed.");
    }
    const previous = this.info ?? {};
    this.info = {
      ...previous,
      room,
      title: reply.title ?? previous.title ?? room,
      creator: reply.creator ?? previous.creator ?? "",
      live: Boolean(reply.live),
      viewers: reply.viewers ?? 0,
      likes: reply.likes ?? previous.likes ?? 0,
      top: reply.top ?? [],
      subscribersOnly: Boolean(reply.subscribers_only),
      subPrice: reply.sub_price ?? previous.subPrice ?? null,
      subscribedUntil: reply.subscribed_until ?? previous.subscribedUntil ?? 0,
      pinned: this.pinnedFromJoin(reply),
    };
    if (!replay) this.feedSystem(this.joinedText());
    this.setStageState(this.info.live ? "live" : "ended");
    this.renderHeader();
    this.renderTop(this.info.top);
    this.renderPinned(this.info.pinned);
    for (const x of this.app.extras ?? []) x.applyJoin(reply, replay);
    this.changed();
  }

  /** The first line of the feed: the creator is told she is live in her own room. */
  joinedText() {
    const { live, creator } = this.info;
    if (creator && creator === this.app.me()) {
      return live ? "You are LIVE in your room." : "Your room is not live right now.";
    }
    if (!live) return "This room is not live right now.";
    return `You joined ${creator ? `${creator}'s` : "the"} LIVE.`;
  }

  pinnedFromJoin(reply) {
    if (reply.pinned_product) return { ...reply.pinned_product };
    if (reply.pinned) {
      const cached = this.app.products.get(reply.pinned);
      return cached ? { ...cached } : { product: reply.pinned, title: reply.pinned };
    }
    return null;
  }

  setStageState(state) {
    const stage = $("#stage");
    stage.dataset.state = state;
    const inRoom = state !== "empty";
    document.body.dataset.inRoom = inRoom ? "yes" : "no";
    $("#stage-empty").hidden = inRoom && state !== "joining";
    if (state === "joining") $("#stage-empty-text").textContent = "Joining…";
    else if (!inRoom) $("#stage-empty-text").textContent = this.app.role === "creator"
      ? "You are offline. Fill in a title and press Go LIVE."
      : "Pick a live room to join.";
    $("#ended-banner").hidden = state !== "ended";
    const live = state === "live";
    $("#live-badge").hidden = !live;
    for (const id of ["#chat-input", "#chat-send", "#like-btn"]) $(id).disabled = !live;
    $("#leave-btn").disabled = !inRoom;
    this.renderChatMode();
  }

  // ---- events ------------------------------------------------------------

  /** Handle a room event. Returns false when it was a duplicate. */
  handleEvent(ev) {
    if (!this.room || ev.room !== this.room) return false;
    if (typeof ev.seq === "number") {
      const last = this.lastSeq.get(ev.room);
      if (last !== undefined && ev.seq <= last) return false; // already applied (replay overlap)
      if (last !== undefined && ev.seq > last + 1 && this.allowJump !== ev.room) {
        // Seqs grow by exactly one: we missed something. Fetch it with `join since`;
        // this event comes again in that replay.
        if (this.resync(ev.room)) return false;
      }
      this.allowJump = null;
      this.lastSeq.set(ev.room, ev.seq);
    }
    const fresh = !ev.ts || Date.now() - ev.ts < STALE_EVENT_MS;
    const handler = this[`on_${ev.ev}`];
    if (handler) handler.call(this, ev, fresh);
    for (const x of this.app.extras ?? []) x.handleEvent(ev, fresh);
    return true;
  }

  on_chat(ev) {
    const sub = ev.badge === "sub";
    const item = el("li", { class: "feed-item chat", dataset: { kind: "chat", seq: ev.seq ?? "" } },
      el("span", { class: "who", text: ev.from }),
      sub ? el("span", { class: "badge-sub", text: "SUB", attrs: { title: "Subscriber", "data-testid": "sub-badge" } }) : null,
      sub ? tierBadge(ev.sub_badge) : null, // the tier and loyalty months
      el("span", { class: "text", text: ev.text }));
    this.feedPush(item);
  }

  on_gift(ev, fresh) {
    const count = ev.count ?? 1;
    const key = `${ev.from}|${ev.gift}`;
    const previous = this.feedStreaks.get(key);
    const startsStreak = (ev.combo ?? 1) <= count; // the first send of a streak
    if (!startsStreak && previous?.isConnected) {
      // The same streak goes on: one feed line that counts up, moved to the bottom.
      const combo = Math.max(Number(previous.dataset.combo), ev.combo);
      previous.dataset.combo = String(combo);
      previous.dataset.seq = String(ev.seq ?? "");
      previous.querySelector(".combo-tag").textContent = `x${combo}`;
      previous.remove();
      this.feedPush(previous);
    } else {
      const item = el("li", {
        class: "feed-item gift",
        dataset: { kind: "gift", seq: ev.seq ?? "", gift: ev.gift, from: ev.from, combo: String(ev.combo ?? 1) },
      },
      el("span", { class: "who", text: ev.from }),
      el("span", { class: "text" }, `sent ${giftName(ev.gift)}${count > 1 ? ` ×${count}` : ""} `,
        giftIcon(ev.gift)),
      el("span", { class: "combo-tag", text: ev.combo > 1 ? `x${ev.combo}` : "" }));
      this.feedPush(item);
      this.feedStreaks.set(key, item);
    }
    if (!fresh) return;
    if ((ev.coins ?? 0) >= BIG_GIFT_COINS) this.bigGift(ev);
    else this.streak(ev);
  }

  on_sub(ev) {
    this.feedPush(el("li", { class: "feed-item sub", dataset: { kind: "sub", seq: ev.seq ?? "", gifted: ev.gifted ? "yes" : "no" } },
      el("span", { class: "who", text: ev.from }),
      el("span", { class: "text" }, subText(ev), icon(ev.gifted ? "gift" : "party", "inline-icon"))));
    if (ev.from === this.app.me() && this.info) {
      this.info.subscribedUntil = Math.max(this.info.subscribedUntil ?? 0, ev.until ?? 0);
      this.changed();
    }
  }

  on_purchase(ev) {
    const pinned = this.info?.pinned;
    const title = this.app.products.get(ev.product)?.title
      ?? (pinned?.product === ev.product ? pinned.title : ev.product);
    const qty = ev.qty ?? 1;
    this.feedPush(el("li", { class: "feed-item purchase", dataset: { kind: "purchase", seq: ev.seq ?? "" } },
      el("span", { class: "who", text: ev.from }),
      el("span", { class: "text" }, `bought ${qty > 1 ? `${qty} × ` : ""}${title} `, icon("bag", "inline-icon"))));
    let stock = ev.stock;
    if (typeof stock !== "number") {
      // Older servers leave `stock` out: count down from what we knew.
      const known = pinned?.product === ev.product ? pinned.stock : this.app.products.get(ev.product)?.stock;
      stock = typeof known === "number" ? Math.max(0, known - qty) : undefined;
    }
    if (typeof stock === "number") this.setStock(ev.product, stock);
  }

  setStock(product, stock) {
    const cached = this.app.products.get(product);
    if (cached) cached.stock = stock;
    const pinned = this.info?.pinned;
    if (pinned && pinned.product === product) {
      pinned.stock = stock;
      this.renderPinned(pinned);
    }
    this.app.onProductStock?.(product, stock);
  }

  on_pinned(ev) {
    if (!this.info) return;
    if (ev.product) {
      const cached = this.app.products.get(ev.product) ?? {};
      this.info.pinned = {
        ...cached,
        product: ev.product,
        title: ev.title ?? cached.title ?? ev.product,
        price: ev.price ?? cached.price,
        stock: ev.stock ?? cached.stock,
        seller: ev.seller ?? cached.seller,
      };
      this.feedSystem(`Pinned: ${this.info.pinned.title}`, "pin");
    } else {
      this.info.pinned = null;
    }
    this.renderPinned(this.info.pinned);
    this.changed();
  }

  on_room_open(ev) {
    if (!this.info) return;
    this.info.live = true;
    if (ev.title) this.info.title = ev.title;
    if (ev.creator) this.info.creator = ev.creator;
    this.info.top = [];
    this.info.likes = 0;
    this.feedSystem("The LIVE started.");
    this.setStageState("live");
    this.renderHeader();
    this.renderTop([]);
    this.changed();
  }

  on_room_closed() {
    if (!this.info) return;
    this.info.live = false;
    this.feedSystem("The LIVE ended.");
    this.setStageState("ended");
    this.changed();
  }

  on_viewers(ev) {
    if (!this.info) return;
    this.info.viewers = ev.count ?? 0;
    $("#viewer-count").textContent = fmt(this.info.viewers);
  }

  on_like(ev, fresh) {
    if (!this.info) return;
    const before = this.info.likes ?? 0;
    this.info.likes = Math.max(before, ev.total ?? before);
    $("#like-count").textContent = fmt(this.info.likes);
    if (fresh) this.hearts(Math.min(this.info.likes - before, MAX_HEARTS_PER_EVENT));
  }

  on_top(ev) {
    if (!this.info) return;
    this.info.top = ev.top ?? [];
    this.renderTop(this.info.top);
  }

  on_chat_mode(ev) {
    if (!this.info) return;
    this.info.subscribersOnly = Boolean(ev.subscribers_only);
    this.feedSystem(this.info.subscribersOnly ? "Chat is now subscriber-only." : "Chat is open to everyone.");
    this.renderChatMode();
    this.changed();
  }

  // ---- actions -------------------------------------------------------------

  async sendChat() {
    const input = $("#chat-input");
    const text = input.value.trim();
    if (!text || !this.room) return;
    const room = this.room;
    await withBusy($("#chat-send"), "Chat", async () => {
      await this.client.request("chat", { room, text });
      // Only what was sent is cleared: a line typed while it was on its way stays.
      if (input.value.trim() === text) input.value = "";
    });
    input.focus();
  }

  like() {
    if (!this.room || !this.info?.live) return;
    // Taps within 250 ms go out as one `like {count}` request.
    this.likeBatch = (this.likeBatch ?? 0) + 1;
    if (this.likeTimer) return;
    this.likeTimer = setTimeout(async () => {
      const count = Math.min(this.likeBatch, 100);
      this.likeBatch = 0;
      this.likeTimer = null;
      try {
        await this.client.request("like", { room: this.room, count });
      } catch (error) {
        showError(error, "Like");
      }
    }, 250);
  }

  async buyPinned(button) {
    const pinned = this.info?.pinned;
    if (!pinned || !this.room) return;
    const key = newKey();
    await withBusy(button, "Buying", async () => {
      const reply = await this.client.request("buy",
        { room: this.room, product: pinned.product, qty: 1, key }, { retry: true });
      if (typeof reply.coins === "number") this.app.onWallet({ coins: reply.coins });
      // Human words only: the order id is for the server's records, not for people.
      toast("success", `Bought 1 × ${pinned.title ?? pinned.product}`,
        typeof pinned.price === "number" ? `${fmt(pinned.price)} coins` : "", { timeout: 3000 });
    });
    this.renderPinned(this.info?.pinned ?? null);
  }

  // ---- drawing ---------------------------------------------------------------

  renderHeader() {
    const info = this.info;
    $("#stage-title").textContent = info ? info.title : "No room";
    $("#stage-title").title = info ? info.title : ""; // cut with an ellipsis on a phone
    $("#stage-host").textContent = info?.creator ? `@${info.creator}` : "";
    $("#host-avatar").textContent = (info?.creator || "?").charAt(0).toUpperCase();
    $("#viewer-count").textContent = fmt(info?.viewers ?? 0);
    $("#like-count").textContent = fmt(info?.likes ?? 0);
  }

  renderChatMode() {
    const on = Boolean(this.info?.subscribersOnly);
    const subscribed = (this.info?.subscribedUntil ?? 0) * 1000 > Date.now();
    const mine = this.info?.creator === this.app.me();
    $("#chat-mode-note").hidden = !on || !this.info?.live;
    $("#chat-mode-note").textContent = subscribed || mine
      ? "Subscriber-only chat is on."
      : "Subscriber-only chat is on. Subscribe to join the conversation.";
    $("#chat-input").placeholder = on && !subscribed && !mine
      ? "Only subscribers can chat right now"
      : "Say something nice…";
  }

  renderTop(top) {
    const list = $("#leaderboard");
    list.replaceChildren(...(top ?? []).slice(0, 10).map(([user, coins], i) => el("li",
      { class: `leader${user === this.app.me() ? " is-me" : ""}`, dataset: { user } },
      i < 3 ? icon(`medal${i + 1}`, "rank") : el("span", { class: "rank", text: `${i + 1}`, attrs: { "aria-hidden": "true" } }),
      el("span", { class: "who", text: user }),
      el("span", { class: "coins" }, el("span", { class: "coin", attrs: { "aria-hidden": "true" } }),
        ` ${fmt(coins)}`, el("span", { class: "sr-only", text: " coins" })))));
    $("#leaderboard-empty").hidden = list.children.length > 0;
  }

  renderPinned(pinned) {
    const card = $("#pinned-card");
    card.hidden = !pinned;
    if (!pinned) return;
    card.dataset.product = pinned.product;
    $("#pinned-title").textContent = pinned.title ?? pinned.product;
    $("#pinned-price").replaceChildren(...(typeof pinned.price === "number"
      ? [el("span", { class: "coin", attrs: { "aria-hidden": "true" } }), ` ${fmt(pinned.price)}`] : []));
    const stock = pinned.stock;
    const soldOut = typeof stock === "number" && stock <= 0;
    $("#pinned-stock").textContent = typeof stock === "number"
      ? (soldOut ? "Sold out" : `${fmt(stock)} left`) : "";
    card.classList.toggle("sold-out", soldOut);
    const buy = $("#pinned-buy");
    buy.textContent = soldOut ? "Sold out" : "Buy";
    buy.disabled = soldOut || !this.info?.live;
    buy.setAttribute("aria-label", `Buy ${pinned.title ?? pinned.product}`);
  }

  feedSystem(text, iconName = null) {
    this.feedPush(el("li", { class: "feed-item system", dataset: { kind: "system" } },
      iconName ? icon(iconName, "inline-icon") : null,
      el("span", { class: "text", text })));
  }

  feedPush(item) {
    const feed = $("#feed");
    const nearBottom = feed.scrollHeight - feed.scrollTop - feed.clientHeight < 60;
    feed.append(item);
    while (feed.children.length > FEED_LIMIT) feed.firstElementChild.remove();
    if (nearBottom) feed.scrollTop = feed.scrollHeight;
  }

  /** One growing "x N" element per (sender, gift) streak. */
  streak(ev) {
    const key = `${ev.from}|${ev.gift}`;
    const combo = ev.combo ?? ev.count ?? 1;
    let s = this.streaks.get(key);
    if (s?.node.classList.contains("leaving")) {
      s.node.remove();
      this.streaks.delete(key);
      s = undefined;
    }
    if (s && combo <= (ev.count ?? 1)) {
      // A new streak of the same gift: start the counter over in the same place.
      s.combo = 0;
    }
    if (!s) {
      const node = el("div", { class: "streak", dataset: { from: ev.from, gift: ev.gift }, attrs: { "data-testid": "streak" } },
        el("span", { class: "streak-avatar", text: ev.from.charAt(0).toUpperCase(), attrs: { "aria-hidden": "true" } }),
        el("span", { class: "streak-text" },
          el("strong", { class: "streak-from", text: ev.from }),
          el("span", { class: "streak-gift", text: `sent ${giftName(ev.gift)}` })),
        giftIcon(ev.gift, "streak-icon"),
        el("span", { class: "streak-count", attrs: { "data-testid": "streak-count" } }));
      s = { node, combo: 0, timer: null };
      this.streaks.set(key, s);
      const lane = $("#streaks");
      lane.append(node);
      while (lane.children.length > MAX_STREAKS) {
        const oldest = lane.firstElementChild;
        this.streaks.delete(`${oldest.dataset.from}|${oldest.dataset.gift}`);
        oldest.remove();
      }
    }
    s.combo = Math.max(s.combo, combo);
    const counter = s.node.querySelector(".streak-count");
    counter.textContent = `x${s.combo}`;
    counter.classList.remove("bump");
    void counter.offsetWidth; // restart the bump animation
    counter.classList.add("bump");
    clearTimeout(s.timer);
    s.timer = setTimeout(() => {
      s.node.classList.add("leaving");
      setTimeout(() => {
        s.node.remove();
        if (this.streaks.get(key) === s) this.streaks.delete(key);
      }, 400);
    }, STREAK_LINGER_MS);
  }

  bigGift(ev) {
    this.bigQueue.push(ev);
    if (!this.bigBusy) this.nextBigGift();
  }

  nextBigGift() {
    const box = $("#big-gift");
    const ev = this.bigQueue.shift();
    if (!ev) {
      this.bigBusy = false;
      box.hidden = true;
      return;
    }
    this.bigBusy = true;
    box.replaceChildren(
      el("div", { class: "big-burst", attrs: { "aria-hidden": "true" } }),
      giftIcon(ev.gift, "big-icon"),
      el("p", { class: "big-text" }, el("strong", { text: ev.from }), ` sent ${giftName(ev.gift)}!`),
      el("p", { class: "big-value" }, el("span", { class: "coin", attrs: { "aria-hidden": "true" } }), ` ${fmt(ev.coins)}`));
    box.hidden = false;
    box.classList.remove("play");
    void box.offsetWidth;
    box.classList.add("play");
    setTimeout(() => this.nextBigGift(), 3200);
  }

  hearts(n) {
    const box = $("#hearts");
    const colors = ["#fe2c55", "#ff6b8b", "#25f4ee", "#ffd166", "#c77dff"];
    for (let i = 0; i < n; i += 1) {
      const heart = el("span", { class: "heart", text: "♥" });
      heart.style.left = `${10 + Math.random() * 70}%`;
      heart.style.color = colors[Math.floor(Math.random() * colors.length)];
      heart.style.animationDelay = `${i * 90}ms`;
      heart.style.setProperty("--drift", `${Math.round((Math.random() - 0.5) * 80)}px`);
      heart.addEventListener("animationend", () => heart.remove());
      box.append(heart);
    }
    while (box.children.length > 40) box.firstElementChild.remove();
  }
}
