// Paid messages: the viewer's "Pay and send" at a tier of the catalogue, the
// paid line in the feed, and the pinned ones at the top of the room with their
// time left (the creator or a moderator can unpin them).

import { $, el, fmt, newKey, withBusy } from "./ui.js";
import { clock } from "./clock.js";

const pinLength = (seconds) => (seconds >= 3600 ? `${seconds / 3600} h`
  : seconds >= 60 ? `${seconds / 60} min` : `${seconds} s`);

export class PaidPart {
  constructor(live) {
    this.live = live;
    this.tiers = [];
    this.clear();
    $("#paid-form").addEventListener("submit", (e) => { e.preventDefault(); this.sendPaid(); });
  }

  clear() {
    this.pins = new Map(); // pin -> {from, text, coins, pin, until}
  }

  setCatalog(catalog) {
    this.tiers = catalog.paid_chat_tiers ?? [];
    $("#paid-tier").replaceChildren(...this.tiers.map(([coins, seconds]) => el("option",
      { value: String(coins), text: `${fmt(coins)} coins · ${seconds ? `pinned ${pinLength(seconds)}` : "not pinned"}` })));
  }

  applyJoin(reply) {
    this.pins = new Map((reply.pins ?? []).map((p) => [p.pin, { ...p }]));
  }

  on_paid_chat(ev) {
    this.live.roomView.feedPush(el("li", { class: "feed-item paid", dataset: { kind: "paid", seq: ev.seq ?? "" } },
      el("span", { class: "who", text: ev.from }),
      el("span", { class: "paid-coins" }, el("span", { class: "coin", attrs: { "aria-hidden": "true" } }), ` ${fmt(ev.coins)}`),
      el("span", { class: "text", text: ev.text })));
    if (ev.until > 0) this.pins.set(ev.pin, { from: ev.from, text: ev.text, coins: ev.coins, pin: ev.pin, until: ev.until });
  }

  on_unpinned(ev) {
    this.pins.delete(ev.pin);
  }

  async sendPaid() {
    const input = $("#paid-text");
    const text = input.value.trim();
    const room = this.live.room;
    if (!text || !room) return;
    const coins = Number($("#paid-tier").value);
    await withBusy($("#paid-send"), "Paid message", async () => {
      const reply = await this.live.client.request("paid_chat", { room, text, coins, key: newKey() }, { retry: true });
      if (typeof reply.coins === "number") this.live.app.onWallet({ coins: reply.coins });
      input.value = "";
    });
  }

  async unpin(pin, button) {
    await withBusy(button, "Unpin", () => this.live.client.request("unpin", { room: this.live.room, pin: pin.pin }));
  }

  render() {
    const list = $("#paid-pins");
    const canUnpin = this.live.app.moderation?.canModerate() ?? false;
    const pins = [...this.pins.values()].sort((x, y) => y.coins - x.coins);
    list.hidden = pins.length === 0;
    list.replaceChildren(...pins.map((p) => el("li", { class: "paid-pin", dataset: { pin: p.pin, until: String(p.until) }, attrs: { "data-testid": "paid-pin" } },
      el("span", { class: "pin-head" }, el("strong", { text: p.from }),
        el("span", { class: "paid-coins" }, el("span", { class: "coin", attrs: { "aria-hidden": "true" } }), ` ${fmt(p.coins)}`),
        el("span", { class: "pin-left", attrs: { "data-testid": "pin-left" } })),
      el("span", { class: "pin-text", text: p.text }),
      canUnpin ? el("button", { type: "button", class: "btn small ghost pin-unpin", text: "Unpin",
        attrs: { "aria-label": `Unpin the message from ${p.from}` }, onclick: (e) => this.unpin(p, e.currentTarget) }) : null)));
  }

  /** Each pin's time left; expired pins go away. */
  tick(now) {
    let changed = false;
    for (const [pin, p] of this.pins) {
      const left = this.live.local(p.until) - now;
      if (left <= 0) {
        this.pins.delete(pin);
        changed = true;
      }
      const node = $(`#paid-pins [data-pin="${CSS.escape(pin)}"] .pin-left`);
      if (node) node.textContent = clock(left);
    }
    if (changed) this.render();
  }
}
