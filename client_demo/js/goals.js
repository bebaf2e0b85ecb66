// The room's goal (coins, a gift, or new subscribers) filling on screen, the
// creator's "Set goal" form, and the hype train: its level, progress, countdown
// and the level it reached.

import { $, el, fmt, giftName, withBusy } from "./ui.js";
import { icon } from "./icons.js";
import { RESULT_LINGER_MS, clock } from "./clock.js";

export class GoalsPart {
  constructor(live) {
    this.live = live;
    this.clear();
    $("#goal-form").addEventListener("submit", (e) => { e.preventDefault(); this.setGoal(); });
    $("#goal-kind").addEventListener("change", () => this.renderGoalForm());
  }

  clear() {
    this.goal = null;
    this.hype = null; // {train, level, total, next, ends, result}
  }

  setCatalog(catalog) {
    $("#goal-gift").replaceChildren(...(catalog.gifts ?? []).map((g) => el("option",
      { value: g.gift, text: giftName(g.gift) })));
    this.renderGoalForm();
  }

  applyJoin(reply) {
    this.goal = reply.goal ?? null;
    this.hype = reply.hype ? { ...reply.hype, endsAt: this.live.local(reply.hype.ends) } : null;
  }

  // ---- events ----------------------------------------------------------------------

  on_goal_set(ev) {
    this.goal = { goal: ev.goal, kind: ev.kind, gift: ev.gift, target: ev.target, progress: ev.progress ?? 0, reached: false };
  }

  on_goal(ev) {
    if (this.goal?.goal !== ev.goal) this.goal = { ...ev, reached: false };
    else this.goal.progress = Math.max(this.goal.progress, ev.progress ?? 0);
  }

  on_goal_reached(ev) {
    this.goal = { ...(this.goal ?? {}), ...ev, reached: true };
    this.live.roomView.feedSystem(`Goal reached: ${this.goalLabel(this.goal)}!`, "flag");
  }

  on_hype_start(ev) {
    this.hype = { train: ev.train, level: 0, total: 0, next: null, endsAt: this.live.local(ev.ends), result: null };
    this.live.roomView.feedSystem("A hype train started!", "train");
  }

  on_hype_level(ev) {
    if (!this.hype || this.hype.train !== ev.train) return;
    Object.assign(this.hype, { level: ev.level, total: Math.max(this.hype.total, ev.total ?? 0) });
    this.live.roomView.feedSystem(`Hype train level ${ev.level}!`, "train");
  }

  on_hype(ev) {
    if (this.hype?.result) return;
    this.hype = { ...(this.hype ?? {}), ...ev, endsAt: this.live.local(ev.ends), result: null };
  }

  on_hype_end(ev) {
    this.hype = { ...(this.hype ?? {}), ...ev, result: ev, shownUntil: Date.now() + RESULT_LINGER_MS };
    this.live.roomView.feedSystem(`The hype train ended at level ${ev.level}.`, "train");
  }

  // ---- actions ---------------------------------------------------------------------

  renderGoalForm() {
    $("#goal-gift-field").hidden = $("#goal-kind").value !== "gift";
  }

  async setGoal() {
    const kind = $("#goal-kind").value;
    const room = this.live.room;
    const args = { room, kind, target: Number($("#goal-target").value) };
    if (kind === "gift") args.gift = $("#goal-gift").value;
    if (!room) return;
    await withBusy($("#goal-set-btn"), "Goal", () => this.live.client.request("goal_set", args));
  }

  // ---- drawing ---------------------------------------------------------------------

  goalLabel(goal) {
    if (goal.kind === "gift") return `${fmt(goal.target)} × ${giftName(goal.gift)}`;
    if (goal.kind === "subs") return `${fmt(goal.target)} new subscribers`;
    return `${fmt(goal.target)} coins`;
  }

  render() {
    this.renderGoal();
    this.renderHype();
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

  /** The hype countdown; an ended train's result goes away after a while. */
  tick(now) {
    if (this.hype && !this.hype.result) {
      const t = $("#hype-bar .hype-timer");
      if (t) t.textContent = clock(this.hype.endsAt - now);
    } else if (this.hype?.shownUntil && this.hype.shownUntil < now) {
      this.hype = null;
      this.renderHype();
    }
  }
}
