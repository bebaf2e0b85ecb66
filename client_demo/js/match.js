// The LIVE match on the stage: the invitation a creator answers, the match bar
// (both scores, the timer, the x2 booster badges, the "Last 30 s" mark) and the
// result with each side's top supporters; and the creator's "Invite to a match".

import { $, el, fmt, toast, withBusy } from "./ui.js";
import { icon } from "./icons.js";
import { clock } from "./clock.js";

export class MatchPart {
  constructor(live) {
    this.live = live;
    this.clear();
    $("#match-form").addEventListener("submit", (e) => { e.preventDefault(); this.invite(); });
  }

  clear() {
    this.match = null; // {match, rooms, creators, scores, boost, endsAt, final, result}
    this.invitation = null; // {match, from_room, from, expires}
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
  }

  // ---- events ----------------------------------------------------------------------

  on_match_invite(ev) {
    if (this.live.mine()) {
      this.invitation = { ...ev };
      toast("info", "LIVE match invitation", `@${ev.from} (${ev.from_room}) invites you to a match.`, { timeout: 4000 });
    }
  }

  on_match_declined() {
    this.live.roomView.feedSystem("The match invitation was declined.", "swords");
    $("#match-status").textContent = "Declined.";
  }

  on_match_start(ev) {
    const scores = Object.fromEntries(ev.rooms.map((r) => [r, 0]));
    this.match = {
      match: ev.match, rooms: ev.rooms, creators: ev.creators ?? [], scores, boost: {},
      endsAt: this.live.local(ev.ends), final: false, result: null,
    };
    if (this.invitation?.match === ev.match) this.invitation = null;
    $("#match-status").textContent = "";
    this.live.roomView.feedSystem("The LIVE match started!", "swords");
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
    this.live.roomView.feedSystem(text, "swords");
  }

  // ---- actions ---------------------------------------------------------------------

  async invite() {
    const opponent = $("#match-opponent").value.trim();
    const room = this.live.room;
    if (!opponent || !room) return;
    await withBusy($("#match-invite-btn"), "Match invitation", async () => {
      const reply = await this.live.client.request("match_invite", { room, opponent });
      $("#match-status").textContent = `Invited ${opponent}; waiting for an answer…`;
      return reply;
    });
  }

  async answer(accept, button) {
    const inv = this.invitation;
    if (!inv) return;
    await withBusy(button, accept ? "Accepting the match" : "Declining the match", async () => {
      await this.live.client.request(accept ? "match_accept" : "match_decline", { match: inv.match });
      this.invitation = null;
      this.live.render();
    });
  }

  // ---- drawing ---------------------------------------------------------------------

  /** "@creator" of a room in the match when known, else the room id. */
  sideName(room) {
    const i = this.match?.rooms?.indexOf(room) ?? -1;
    return i >= 0 && this.match.creators?.[i] ? `@${this.match.creators[i]}` : room;
  }

  render() {
    this.renderInvitation();
    this.renderMatch();
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
    const here = this.live.room;
    const rooms = [...m.rooms].sort((a, b) => (b === here) - (a === here));
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
          attrs: { "aria-label": "Close the match result" }, onclick: () => { this.match = null; this.live.render(); } }));
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

  /** The match timer and the x2 countdowns. */
  tick(now) {
    const m = this.match;
    if (!m || m.result) return;
    const timer = $("#match-bar .match-timer");
    if (timer) timer.textContent = clock(m.endsAt - now);
    for (const node of document.querySelectorAll("#match-bar .boost")) {
      const end = this.live.local(m.boost?.[node.dataset.room] ?? 0);
      node.hidden = !(m.boost?.[node.dataset.room] && end > now);
      node.textContent = node.hidden ? "" : `x2 ${clock(end - now)}`;
    }
  }
}
