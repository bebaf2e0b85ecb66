// LIVE mechanics on the stage: the match bar across two creator rooms, the
// room's goal and hype train, pinned paid messages and treasure boxes, with the
// controls that start them. The server owns every clock: countdowns are drawn
// from the times it sends (`left_ms`, `ends`, `opens_at`, `until`).

import { $, el, fmt, giftName, newKey, showError, toast, withBusy } from "./ui.js";
import { icon } from "./icons.js";

const TICK_MS = 250;
const RESULT_LINGER_MS = 20000;

/** "m:ss" for a number of milliseconds (never negative). */
export function clock(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

const pinLength = (seconds) => (seconds >= 3600 ? `${seconds / 3600} h`
  : seconds >= 60 ? `${seconds / 60} min` : `${seconds} s`);

export class LiveExtras {
  constructor(app, roomView) {
    this.app = app;
    this.roomView = roomView;
    this.offset = 0; // server clock minus ours, from the newest unlogged event
    this.tiers = [];
    this.clear();
    $("#match-form").addEventListener("submit", (e) => { e.preventDefault(); this.invite(); });
    $("#goal-form").addEventListener("submit", (e) => { e.preventDefault(); this.setGoal(); });
    $("#goal-kind").addEventListener("change", () => this.renderGoalForm());
    $("#box-form").addEventListener("submit", (e) => { e.preventDefault(); this.dropBox(); });
    $("#paid-form").addEventListener("submit", (e) => { e.preventDefault(); this.sendPaid(); });
    setInterval(() => this.tick(), TICK_MS);
    // The gift streaks float just under the bars at the top of the room.
    new ResizeObserver(([entry]) => $("#stage-screen").style.setProperty(
      "--live-top-h", `${Math.round(entry.target.offsetHeight)}px`)).observe($("#live-top"));
    roomView.onChange(() => this.render());
  }

  get client() {
    return this.app.client;
  }

  get room() {
    return this.roomView.room;
  }

  serverNow() {
    return Date.now() + this.offset;
  }

  mine() {
    const info = this.roomView.info;
    return Boolean(info && info.creator === this.app.me());
  }

  clear() {
    this.match = null; // {match, rooms, creators, scores, boost, endsAt, final, result}
    this.invitation = null; // {match, from_room, from, expires}
    this.goal = null;
    this.hype = null; // {train, level, total, next, ends, result}
    this.pins = new Map(); // pin -> {from, text, coins, pin, until}
    this.boxes = new Map(); // box -> {box, from, coins, opens_at, claimed, result}
  }

  setCatalog(catalog) {
    this.tiers = catalog.paid_chat_tiers ?? [];
    $("#paid-tier").replaceChildren(...this.tiers.map(([coins, seconds]) => el("option",
      { value: String(coins), text: `${fmt(coins)} coins · ${seconds ? `pinned ${pinLength(seconds)}` : "not pinned"}` })));
    $("#goal-gift").replaceChildren(...(catalog.gifts ?? []).map((g) => el("option",
      { value: g.gift, text: giftName(g.gift) })));
    this.renderGoalForm();
  }

  // ---- room state --------------------------------------------------------------

  reset() {
    this.clear();
    this.render();
  }

  applyJoin(reply) {
    if (reply.match) {
      const m = reply.match;
      const rooms = Object.keys(m.scores ?? {});
      this.match = {
        ...(this.match?.match === m.match ? this.match : {}),
        match: m.match, rooms, scores: m.scores ?? {}, boost: m.boost ?? {},
        endsAt: Date.now() + (m.left_ms ?? 0), result: null,
      };
    } else if (this.match && !this.match.result) this.match = null;
    this.goal = reply.goal ?? null;
    this.hype = reply.hype ? { ...reply.hype, endsAt: this.local(reply.hype.ends) } : null;
    this.pins = new Map((reply.pins ?? []).map((p) => [p.pin, { ...p }]));
    this.boxes = new Map((reply.boxes ?? []).map((b) => [b.box, { ...b, claimed: this.boxes.get(b.box)?.claimed }]));
    this.render();
  }

  /** A server time (unix ms) on our clock. */
  local(serverMs) {
    return (serverMs ?? 0) - this.offset;
  }

  handleEvent(ev) {
    if (typeof ev.ts === "number" && typeof ev.seq !== "number") this.offset = ev.ts - Date.now();
    const handler = this[`on_${ev.ev}`];
    if (handler) {
      handler.call(this, ev);
      this.render();
    }
  }

  on_match_invite(ev) {
    if (this.mine()) {
      this.invitation = { ...ev };
      toast("info", "LIVE match invitation", `@${ev.from} (${ev.from_room}) invites you to a match.`, { timeout: 4000 });
    }
  }

  on_match_declined() {
    this.roomView.feedSystem("The match invitation was declined.", "swords");
    $("#match-status").textContent = "Declined.";
  }

  on_match_start(ev) {
    const scores = Object.fromEntries(ev.rooms.map((r) => [r, 0]));
    this.match = {
      match: ev.match, rooms: ev.rooms, creators: ev.creators ?? [], scores, boost: {},
      endsAt: this.local(ev.ends), final: false, result: null,
    };
    if (this.invitation?.match === ev.match) this.invitation = null;
    $("#match-status").textContent = "";
    this.roomView.feedSystem("The LIVE match started!", "swords");
  }

  on_match_score(ev) {
    if (!this.match || this.match.match !== ev.match) {
      this.match = { match: ev.match, rooms: Object.keys(ev.scores ?? {}), creators: [], final: false, result: null };
    }
    if (this.match.result) return;
    Object.assign(this.match, { scores: ev.scores ?? {}, boost: ev.boost ?? {} });
    if (typeof ev.left_ms === "number") this.match.endsAt = Date.now() + ev.left_ms;
  }

  on_match_final(ev) {
    if (this.match?.match === ev.match) this.match.final = true;
  }

  on_match_end(ev) {
    const rooms = this.match?.match === ev.match ? this.match.rooms : Object.keys(ev.scores ?? {});
    this.match = { ...(this.match ?? {}), match: ev.match, rooms, scores: ev.scores ?? {}, result: ev };
    const text = ev.winner ? `${this.sideName(ev.winner)} won the match!` : "The match ended in a draw.";
    this.roomView.feedSystem(text, "swords");
  }

  on_goal_set(ev) {
    this.goal = { goal: ev.goal, kind: ev.kind, gift: ev.gift, target: ev.target, progress: ev.progress ?? 0, reached: false };
  }

  on_goal(ev) {
    if (this.goal?.goal !== ev.goal) this.goal = { ...ev, reached: false };
    else this.goal.progress = Math.max(this.goal.progress, ev.progress ?? 0);
  }

  on_goal_reached(ev) {
    this.goal = { ...(this.goal ?? {}), ...ev, reached: true };
    this.roomView.feedSystem(`Goal reached: ${this.goalLabel(this.goal)}!`, "flag");
  }

  on_hype_start(ev) {
    this.hype = { train: ev.train, level: 0, total: 0, next: null, endsAt: this.local(ev.ends), result: null };
    this.roomView.feedSystem("A hype train started!", "train");
  }

  on_hype_level(ev) {
    if (!this.hype || this.hype.train !== ev.train) return;
    Object.assign(this.hype, { level: ev.level, total: Math.max(this.hype.total, ev.total ?? 0) });
    this.roomView.feedSystem(`Hype train level ${ev.level}!`, "train");
  }

  on_hype(ev) {
    if (this.hype?.result) return;
    this.hype = { ...(this.hype ?? {}), ...ev, endsAt: this.local(ev.ends), result: null };
  }

  on_hype_end(ev) {
    this.hype = { ...(this.hype ?? {}), ...ev, result: ev, shownUntil: Date.now() + RESULT_LINGER_MS };
    this.roomView.feedSystem(`The hype train ended at level ${ev.level}.`, "train");
  }

  on_paid_chat(ev) {
    this.roomView.feedPush(el("li", { class: "feed-item paid", dataset: { kind: "paid", seq: ev.seq ?? "" } },
      el("span", { class: "who", text: ev.from }),
      el("span", { class: "paid-coins" }, el("span", { class: "coin", attrs: { "aria-hidden": "true" } }), ` ${fmt(ev.coins)}`),
      el("span", { class: "text", text: ev.text })));
    if (ev.until > 0) this.pins.set(ev.pin, { from: ev.from, text: ev.text, coins: ev.coins, pin: ev.pin, until: ev.until });
  }

  on_unpinned(ev) {
    this.pins.delete(ev.pin);
  }

  on_box_drop(ev) {
    this.boxes.set(ev.box, { box: ev.box, from: ev.from, coins: ev.coins, opens_at: ev.opens_at });
    this.roomView.feedSystem(`${ev.from} dropped a treasure box of ${fmt(ev.coins)} coins!`, "chest");
  }

  on_box_opened(ev) {
    const box = this.boxes.get(ev.box) ?? { box: ev.box, from: ev.from, coins: ev.coins };
    box.result = ev;
    box.shownUntil = Date.now() + RESULT_LINGER_MS;
    this.boxes.set(ev.box, box);
    const mine = (ev.split ?? []).find(([user]) => user === this.app.me());
    if (mine) toast("success", "Treasure box opened", `You got ${fmt(mine[1])} coins.`, { timeout: 4000 });
  }

  // ---- actions -------------------------------------------------------------------

  async invite() {
    const opponent = $("#match-opponent").value.trim();
    if (!opponent || !this.room) return;
    await withBusy($("#match-invite-btn"), "Match invitation", async () => {
      const reply = await this.client.request("match_invite", { room: this.room, opponent });
      $("#match-status").textContent = `Invited ${opponent}; waiting for an answer…`;
      return reply;
    });
  }

  async answer(accept, button) {
    const inv = this.invitation;
    if (!inv) return;
    await withBusy(button, accept ? "Accepting the match" : "Declining the match", async () => {
      await this.client.request(accept ? "match_accept" : "match_decline", { match: inv.match });
      this.invitation = null;
      this.render();
    });
  }

  renderGoalForm() {
    $("#goal-gift-field").hidden = $("#goal-kind").value !== "gift";
  }

  async setGoal() {
    const kind = $("#goal-kind").value;
    const args = { room: this.room, kind, target: Number($("#goal-target").value) };
    if (kind === "gift") args.gift = $("#goal-gift").value;
    if (!this.room) return;
    await withBusy($("#goal-set-btn"), "Goal", () => this.client.request("goal_set", args));
  }

  async dropBox() {
    if (!this.room) return;
    const args = {
      room: this.room, coins: Number($("#box-coins").value), seconds: Number($("#box-seconds").value), key: newKey(),
    };
    await withBusy($("#box-drop-btn"), "Treasure box", async () => {
      const reply = await this.client.request("box_drop", args, { retry: true });
      if (typeof reply.coins === "number") this.app.onWallet({ coins: reply.coins });
    });
  }

  async claim(box, button) {
    await withBusy(button, "Claiming the box", async () => {
      const reply = await this.client.request("box_claim", { room: this.room, box: box.box });
      box.claimed = reply.order ?? true;
    });
    this.render();
  }

  async sendPaid() {
    const input = $("#paid-text");
    const text = input.value.trim();
    if (!text || !this.room) return;
    const coins = Number($("#paid-tier").value);
    await withBusy($("#paid-send"), "Paid message", async () => {
      const reply = await this.client.request("paid_chat", { room: this.room, text, coins, key: newKey() }, { retry: true });
      if (typeof reply.coins === "number") this.app.onWallet({ coins: reply.coins });
      input.value = "";
    });
  }

  async unpin(pin, button) {
    await withBusy(button, "Unpin", () => this.client.request("unpin", { room: this.room, pin: pin.pin }));
  }

  // ---- drawing ---------------------------------------------------------------------

  /** "@creator" of a room in the match when known, else the room id. */
  sideName(room) {
    const i = this.match?.rooms?.indexOf(room) ?? -1;
    return i >= 0 && this.match.creators?.[i] ? `@${this.match.creators[i]}` : room;
  }

  goalLabel(goal) {
    if (goal.kind === "gift") return `${fmt(goal.target)} × ${giftName(goal.gift)}`;
    if (goal.kind === "subs") return `${fmt(goal.target)} new subscribers`;
    return `${fmt(goal.target)} coins`;
  }

  render() {
    const live = Boolean(this.roomView.info?.live);
    const mine = this.mine();
    $("#match-invite-btn").disabled = !live || !mine;
    $("#goal-set-btn").disabled = !live || !mine;
    $("#box-drop-btn").disabled = !live;
    $("#paid-send").disabled = !live || mine;
    this.renderInvitation();
    this.renderMatch();
    this.renderGoal();
    this.renderHype();
    this.renderPins();
    this.renderBoxes();
    this.tick();
  }

  renderInvitation() {
    const box = $("#match-invite");
    const inv = this.invitation;
    box.hidden = !inv;
    if (!inv) return;
    box.replaceChildren(icon("swords", "inline-icon"),
      el("span", { class: "invite-text", text: `@${inv.from} (${inv.from_room}) invites you to a LIVE match` }),
      el("button", { type: "button", class: "btn primary small", text: "Accept", onclick: (e) => this.answer(true, e.currentTarget) }),
      el("button", { type: "button", class: "btn small", text: "Decline", onclick: (e) => this.answer(false, e.currentTarget) }));
  }

  renderMatch() {
    const bar = $("#match-bar");
    const m = this.match;
    bar.hidden = !m;
    if (!m) return;
    // Our room on the left.
    const rooms = [...m.rooms].sort((a, b) => (b === this.room) - (a === this.room));
    const [a, b] = rooms;
    const sa = m.scores?.[a] ?? 0;
    const sb = m.scores?.[b] ?? 0;
    const share = sa + sb ? (sa / (sa + sb)) * 100 : 50;
    const name = (r) => this.sideName(r);
    const side = (r, score, cls) => el("div", { class: `match-side ${cls}`, dataset: { room: r }, attrs: { "data-testid": "match-side" } },
      el("span", { class: "side-name", text: name(r) }),
      el("strong", { class: "side-score", text: fmt(score), attrs: { "data-testid": "match-score" } }),
      el("span", { class: "boost", dataset: { room: r }, attrs: { "data-testid": "match-boost" }, hidden: true }));
    bar.dataset.state = m.result ? "ended" : "running";
    const result = m.result;
    let resultNode = null;
    if (result) {
      const top = Object.entries(result.top ?? {}).map(([r, list]) => el("span", { class: "match-top" },
        `${name(r)}: `, (list ?? []).map(([u, p]) => `${u} ${fmt(p)}`).join(", ") || "no gifts"));
      resultNode = el("div", { class: "match-result", attrs: { "data-testid": "match-result" } },
        el("strong", { text: result.winner ? `${name(result.winner)} wins!` : "Draw!" }),
        result.reason === "closed" ? el("span", { class: "muted", text: " (a room closed)" }) : null,
        el("div", { class: "match-tops", attrs: { "data-testid": "match-top" } }, ...top),
        el("button", { type: "button", class: "btn ghost small", text: "Close",
          attrs: { "aria-label": "Close the match result" }, onclick: () => { this.match = null; this.render(); } }));
    }
    $("#match-body").replaceChildren(
      el("div", { class: "match-row" }, side(a, sa, "ours"),
        el("div", { class: "match-mid" }, icon("swords", "match-icon"),
          el("span", { class: "match-timer", attrs: { "data-testid": "match-timer" } }),
          el("span", { class: "match-final", text: "Last 30 s", attrs: { "data-testid": "match-final" }, hidden: !m.final || Boolean(result) })),
        side(b, sb, "theirs")),
      el("div", { class: "match-track", attrs: { role: "img", "aria-label": `${fmt(sa)} to ${fmt(sb)}` } },
        el("span", { class: "match-fill", style: `width: ${share}%` })),
      ...(resultNode ? [resultNode] : []));
  }

  renderGoal() {
    const bar = $("#goal-bar");
    const g = this.goal;
    bar.hidden = !g;
    if (!g) return;
    const pct = Math.min(100, (g.progress / Math.max(1, g.target)) * 100);
    bar.dataset.reached = g.reached ? "yes" : "no";
    bar.replaceChildren(...[icon("flag", "inline-icon"),
      el("span", { class: "goal-label", text: `Goal: ${this.goalLabel(g)}` }),
      el("span", { class: "goal-count", text: `${fmt(Math.min(g.progress, g.target))} / ${fmt(g.target)}`, attrs: { "data-testid": "goal-progress" } }),
      g.reached ? el("span", { class: "goal-done", text: "Goal reached!", attrs: { "data-testid": "goal-reached" } }) : null,
      el("span", { class: "progress", attrs: { role: "progressbar", "aria-label": "Goal progress", "aria-valuemin": "0", "aria-valuemax": String(g.target), "aria-valuenow": String(g.progress) } },
        el("span", { class: "progress-fill", style: `width: ${pct}%` }))].filter(Boolean));
  }

  renderHype() {
    const bar = $("#hype-bar");
    const h = this.hype;
    bar.hidden = !h;
    if (!h) return;
    bar.dataset.state = h.result ? "ended" : "running";
    if (h.result) {
      const top = (h.result.top ?? []).map(([u, c]) => `${u} ${fmt(c)}`).join(", ");
      bar.replaceChildren(icon("train", "inline-icon"),
        el("span", { class: "hype-text", attrs: { "data-testid": "hype-result" } },
          `Hype train ended at level ${h.result.level} (${fmt(h.result.total)} coins)`, top ? ` · top: ${top}` : ""));
      return;
    }
    const nextTotal = h.next ?? h.total;
    const pct = h.next ? Math.min(100, (h.total / Math.max(1, h.next)) * 100) : 100;
    bar.replaceChildren(icon("train", "inline-icon"),
      el("span", { class: "hype-text", attrs: { "data-testid": "hype-level" } }, `Hype train · level ${h.level}`),
      el("span", { class: "hype-count", text: h.next ? `${fmt(h.total)} / ${fmt(nextTotal)}` : `${fmt(h.total)} · top level`, attrs: { "data-testid": "hype-progress" } }),
      el("span", { class: "hype-timer", attrs: { "data-testid": "hype-timer" } }),
      el("span", { class: "progress" }, el("span", { class: "progress-fill hype-fill", style: `width: ${pct}%` })));
  }

  renderPins() {
    const list = $("#paid-pins");
    const canUnpin = this.app.moderation?.canModerate() ?? false;
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

  renderBoxes() {
    const list = $("#boxes");
    const me = this.app.me();
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

  /** Countdowns; expired pins and old results go away. */
  tick() {
    const now = Date.now();
    const m = this.match;
    if (m && !m.result) {
      const timer = $("#match-bar .match-timer");
      if (timer) timer.textContent = clock(m.endsAt - now);
      for (const node of document.querySelectorAll("#match-bar .boost")) {
        const end = this.local(m.boost?.[node.dataset.room] ?? 0);
        node.hidden = !(m.boost?.[node.dataset.room] && end > now);
        node.textContent = node.hidden ? "" : `x2 ${clock(end - now)}`;
      }
    }
    if (this.hype && !this.hype.result) {
      const t = $("#hype-bar .hype-timer");
      if (t) t.textContent = clock(this.hype.endsAt - now);
    } else if (this.hype?.shownUntil && this.hype.shownUntil < now) {
      this.hype = null;
      this.renderHype();
    }
    let changed = false;
    for (const [pin, p] of this.pins) {
      const left = this.local(p.until) - now;
      if (left <= 0) {
        this.pins.delete(pin);
        changed = true;
      }
      const node = $(`#paid-pins [data-pin="${CSS.escape(pin)}"] .pin-left`);
      if (node) node.textContent = clock(left);
    }
    if (changed) this.renderPins();
    for (const [id, b] of this.boxes) {
      if (b.result && b.shownUntil < now) {
        this.boxes.delete(id);
        changed = true;
        continue;
      }
      const node = $(`#boxes [data-box="${CSS.escape(id)}"] .box-timer`);
      if (node) node.textContent = ` · opens in ${clock(this.local(b.opens_at) - now)}`;
    }
    if (changed) this.renderBoxes();
  }
}
