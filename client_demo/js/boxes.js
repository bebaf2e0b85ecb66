// Treasure boxes: anyone drops one (coins and a countdown), viewers claim it, and
// everyone sees the split when it opens.

import { $, el, fmt, newKey, toast, withBusy } from "./ui.js";
import { icon } from "./icons.js";
import { RESULT_LINGER_MS, clock } from "./clock.js";

export class BoxesPart {
  constructor(live) {
    this.live = live;
    this.clear();
    $("#box-form").addEventListener("submit", (e) => { e.preventDefault(); this.dropBox(); });
  }

  clear() {
    this.boxes = new Map(); // box -> {box, from, coins, opens_at, claimed, result}
  }

  applyJoin(reply) {
    this.boxes = new Map((reply.boxes ?? []).map((b) => [b.box, { ...b, claimed: this.boxes.get(b.box)?.claimed }]));
  }

  on_box_drop(ev) {
    this.boxes.set(ev.box, { box: ev.box, from: ev.from, coins: ev.coins, opens_at: ev.opens_at });
    this.live.roomView.feedSystem(`${ev.from} dropped a treasure box of ${fmt(ev.coins)} coins!`, "chest");
  }

  on_box_opened(ev) {
    const box = this.boxes.get(ev.box) ?? { box: ev.box, from: ev.from, coins: ev.coins };
    box.result = ev;
    box.shownUntil = Date.now() + RESULT_LINGER_MS;
    this.boxes.set(ev.box, box);
    const mine = (ev.split ?? []).find(([user]) => user === this.live.app.me());
    if (mine) toast("success", "Treasure box opened", `You got ${fmt(mine[1])} coins.`, { timeout: 4000 });
  }

  async dropBox() {
    const room = this.live.room;
    if (!room) return;
    const args = {
      room, coins: Number($("#box-coins").value), seconds: Number($("#box-seconds").value), key: newKey(),
    };
    await withBusy($("#box-drop-btn"), "Treasure box", async () => {
      const reply = await this.live.client.request("box_drop", args, { retry: true });
      if (typeof reply.coins === "number") this.live.app.onWallet({ coins: reply.coins });
    });
  }

  async claim(box, button) {
    await withBusy(button, "Claiming the box", async () => {
      const reply = await this.live.client.request("box_claim", { room: this.live.room, box: box.box });
      box.claimed = reply.order ?? true;
    });
    this.live.render();
  }

  render() {
    const list = $("#boxes");
    const me = this.live.app.me();
    const boxes = [...this.boxes.values()].sort((x, y) => (x.opens_at ?? 0) - (y.opens_at ?? 0));
    list.hidden = boxes.length === 0;
    list.replaceChildren(...boxes.map((b) => {
      let action;
      if (b.result) {
        const split = b.result.refunded ? `nobody claimed: back to ${b.from}`
          : (b.result.split ?? []).map(([u, c]) => `${u} ${fmt(c)}`).join(", ");
        action = el("span", { class: "box-result", text: `Opened: ${split}`, attrs: { "data-testid": "box-result" } });
      } else if (b.from === me) {
        action = el("span", { class: "muted", text: "your box" });
      } else if (b.claimed) {
        action = el("span", { class: "box-claimed", text: `Claimed #${b.claimed}`, attrs: { "data-testid": "box-claimed" } });
      } else {
        action = el("button", { type: "button", class: "btn primary small", text: "Claim",
          attrs: { "aria-label": `Claim the box from ${b.from}` }, onclick: (e) => this.claim(b, e.currentTarget) });
      }
      return el("li", { class: "box-item", dataset: { box: b.box }, attrs: { "data-testid": "box" } },
        icon("chest", "box-icon"),
        el("span", { class: "box-info" },
          el("strong", {}, el("span", { class: "coin", attrs: { "aria-hidden": "true" } }), ` ${fmt(b.coins)}`),
          el("span", { class: "muted", text: ` from ${b.from}` }),
          b.result ? null : el("span", { class: "box-timer", attrs: { "data-testid": "box-timer" } })),
        action);
    }));
  }

  /** Each box's countdown; opened ones go away after a while. */
  tick(now) {
    let changed = false;
    for (const [id, b] of this.boxes) {
      if (b.result && b.shownUntil < now) {
        this.boxes.delete(id);
        changed = true;
        continue;
      }
      const node = $(`#boxes [data-box="${CSS.escape(id)}"] .box-timer`);
      if (node) node.textContent = ` · opens in ${clock(this.live.local(b.opens_at) - now)}`;
    }
    if (changed) this.render();
  }
}
