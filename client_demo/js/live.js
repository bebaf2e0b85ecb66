// LIVE mechanics on the stage: the match bar across two creator rooms
// (match.js), the room's goal and hype train (goals.js), pinned paid messages
// (paid.js) and treasure boxes (boxes.js), with the controls that start them.
// This module hands each part the room's joins and events and keeps the server
// clock: countdowns are drawn from the times the server sends (clock.js).

import { $ } from "./ui.js";
import { clock } from "./clock.js";
import { MatchPart } from "./match.js";
import { GoalsPart } from "./goals.js";
import { PaidPart } from "./paid.js";
import { BoxesPart } from "./boxes.js";

export { clock };

const TICK_MS = 250;

export class LiveExtras {
  constructor(app, roomView) {
    this.app = app;
    this.roomView = roomView;
    this.offset = 0; // server clock minus ours, from the newest unlogged event
    this.matchPart = new MatchPart(this);
    this.goals = new GoalsPart(this);
    this.paid = new PaidPart(this);
    this.boxes = new BoxesPart(this);
    this.parts = [this.matchPart, this.goals, this.paid, this.boxes];
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

  /** A server time (unix ms) on our clock. */
  local(serverMs) {
    return (serverMs ?? 0) - this.offset;
  }

  mine() {
    const info = this.roomView.info;
    return Boolean(info && info.creator === this.app.me());
  }

  setCatalog(catalog) {
    this.paid.setCatalog(catalog);
    this.goals.setCatalog(catalog);
  }

  // ---- room state --------------------------------------------------------------

  reset() {
    for (const part of this.parts) part.clear();
    this.render();
  }

  applyJoin(reply) {
    for (const part of this.parts) part.applyJoin(reply);
    this.render();
  }

  handleEvent(ev) {
    if (typeof ev.ts === "number" && typeof ev.seq !== "number") this.offset = ev.ts - Date.now();
    const name = `on_${ev.ev}`;
    const part = this.parts.find((p) => typeof p[name] === "function");
    if (part) {
      part[name](ev);
      this.render();
    }
  }

  // ---- drawing ---------------------------------------------------------------------

  render() {
    const live = Boolean(this.roomView.info?.live);
    const mine = this.mine();
    $("#match-invite-btn").disabled = !live || !mine;
    $("#goal-set-btn").disabled = !live || !mine;
    $("#box-drop-btn").disabled = !live;
    $("#paid-send").disabled = !live || mine;
    for (const part of this.parts) part.render();
    this.tick();
  }

  /** The pinned paid messages again (moderation changed who may unpin). */
  renderPins() {
    this.paid.render();
  }

  /** Countdowns; expired pins and old results go away. */
  tick() {
    const now = Date.now();
    for (const part of this.parts) part.tick(now);
  }
}
