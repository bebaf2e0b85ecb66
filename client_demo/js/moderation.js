// Moderation on the demo page: the creator appoints moderators; the creator and
// moderators mute, ban and unban viewers, delete chat lines and set slow mode.
// The viewer affected reads a clear notice under the chat box.

import { $, el, fmt, showError, toast, withBusy } from "./ui.js";
import { icon } from "./icons.js";

export class ModerationTools {
  constructor(app, roomView) {
    this.app = app;
    this.roomView = roomView;
    this.clear();
    $("#mod-add-form").addEventListener("submit", (e) => { e.preventDefault(); this.addMod(); });
    $("#mod-user-form").addEventListener("submit", (e) => { e.preventDefault(); this.act("mute", e.submitter); });
    for (const button of document.querySelectorAll("#mod-user-form [data-action]")) {
      if (button.type !== "submit") button.addEventListener("click", (e) => this.act(button.dataset.action, e.currentTarget));
    }
    $("#slow-form").addEventListener("submit", (e) => { e.preventDefault(); this.setSlow(); });
    // Chat lines carry a Delete button (shown to moderators only); a tap on an
    // author's name picks that viewer in the moderation card.
    $("#feed").addEventListener("click", (e) => {
      const del = e.target.closest(".line-del");
      if (del) {
        this.deleteLine(del);
        return;
      }
      const who = e.target.closest(".feed-item.chat .who");
      if (who && this.canModerate()) $("#mod-target").value = who.textContent;
    });
    setInterval(() => this.renderNote(), 1000);
    roomView.onChange(() => this.render());
  }

  get client() {
    return this.app.client;
  }

  clear() {
    this.mods = [];
    this.slow = 0;
    this.mutedUntil = 0;
    this.banned = [];
  }

  isCreator() {
    const info = this.roomView.info;
    return Boolean(info && info.creator === this.app.me());
  }

  canModerate() {
    return this.isCreator() || this.mods.includes(this.app.me());
  }

  reset() {
    this.clear();
    this.render();
  }

  applyJoin(reply) {
    this.mods = reply.mods ?? [];
    this.slow = reply.slow_mode ?? 0;
    this.mutedUntil = reply.muted_until ?? 0;
    this.render();
    if (this.canModerate()) this.refresh();
  }

  handleEvent(ev) {
    const me = this.app.me();
    switch (ev.ev) {
      case "chat":
        this.decorate(ev);
        return;
      case "moderator":
        this.mods = ev.added ? [...new Set([...this.mods, ev.user])] : this.mods.filter((u) => u !== ev.user);
        this.roomView.feedSystem(`${ev.user} is ${ev.added ? "now a moderator" : "no longer a moderator"}.`, "shield");
        break;
      case "muted":
        if (ev.user === me) {
          this.mutedUntil = ev.until ?? 0;
          if (this.mutedUntil) toast("error", "You are muted", `A moderator muted you until ${new Date(this.mutedUntil).toLocaleTimeString()}.`);
        }
        this.roomView.feedSystem(ev.until ? `${ev.user} was muted.` : `${ev.user} can chat again.`, "shield");
        break;
      case "banned":
        this.roomView.feedSystem(`${ev.user} was banned.`, "shield");
        this.mods = this.mods.filter((u) => u !== ev.user);
        if (ev.user === me) {
          this.kicked();
          return;
        }
        break;
      case "unbanned":
        this.roomView.feedSystem(`${ev.user} was unbanned.`, "shield");
        break;
      case "chat_deleted":
        this.markDeleted(ev.chat_seq);
        return;
      case "deleted":
        this.roomView.feedPush(el("li", { class: "feed-item deleted", dataset: { kind: "chat", seq: String(ev.seq), deleted: "yes" } },
          el("span", { class: "text", text: "Message deleted by a moderator" })));
        return;
      case "slow_mode":
        this.slow = ev.seconds ?? 0;
        this.roomView.feedSystem(this.slow ? `Slow mode: one message every ${this.slow} s.` : "Slow mode is off.", "shield");
        break;
      default:
        return;
    }
    this.render();
    if (this.canModerate()) this.refresh();
  }

  decorate(ev) {
    const line = $(`#feed .feed-item.chat[data-seq="${ev.seq}"]`);
    if (!line || line.querySelector(".line-del")) return;
    line.append(el("button", { type: "button", class: "line-del", text: "×",
      attrs: { "aria-label": `Delete the message from ${ev.from}`, title: "Delete this message" } }));
  }

  markDeleted(seq) {
    const line = $(`#feed .feed-item.chat[data-seq="${seq}"]`);
    if (!line) return;
    line.dataset.deleted = "yes";
    line.classList.add("deleted");
    line.replaceChildren(el("span", { class: "text", text: "Message deleted by a moderator" }));
  }

  /** The page's user was banned: out of the room, with a clear notice. */
  kicked() {
    const room = this.roomView.room;
    this.roomView.reset(null);
    this.roomView.setStageState("empty");
    this.roomView.changed();
    this.app.saveRoom(null);
    $("#stage-empty-text").textContent = `You were banned from ${room}.`;
    toast("error", "You were banned from this room", "A moderator removed you; you cannot rejoin it.");
  }

  // ---- actions -----------------------------------------------------------------

  async refresh() {
    try {
      const reply = await this.client.request("moderation", { room: this.roomView.room });
      this.mods = reply.mods ?? this.mods;
      this.slow = reply.slow_mode ?? this.slow;
      this.banned = reply.banned ?? [];
      this.render();
    } catch (error) {
      if (!["offline", "forbidden"].includes(error.code)) showError(error, "Moderation");
    }
  }

  async addMod() {
    const user = $("#mod-new").value.trim();
    if (!user) return;
    await withBusy($("#mod-add-btn"), "Moderators", async () => {
      const reply = await this.client.request("mod_add", { room: this.roomView.room, user });
      this.mods = reply.mods ?? this.mods;
      $("#mod-new").value = "";
      this.render();
    });
  }

  async removeMod(user, button) {
    await withBusy(button, "Moderators", async () => {
      const reply = await this.client.request("mod_remove", { room: this.roomView.room, user });
      this.mods = reply.mods ?? this.mods;
      this.render();
    });
  }

  async act(action, button, target = null) {
    const user = target ?? $("#mod-target").value.trim();
    if (!user) {
      toast("info", "Pick a viewer", "Type a name, or tap a name in the chat.");
      return;
    }
    const room = this.roomView.room;
    const args = { room, user };
    let op = action;
    if (action === "mute") args.seconds = Number($("#mute-seconds").value);
    if (action === "unmute") {
      op = "mute";
      args.seconds = 0;
    }
    const done = { mute: `${user} is muted for ${args.seconds} s.`, unmute: `${user} can chat again.`,
      ban: `${user} is banned.`, unban: `${user} is unbanned.` }[action];
    await withBusy(button, "Moderation", async () => {
      await this.client.request(op, args);
      toast("success", done, "", { timeout: 2500 });
      await this.refresh();
    });
  }

  async setSlow() {
    const seconds = Number($("#slow-seconds").value);
    await withBusy($("#slow-btn"), "Slow mode", () => this.client.request("slow_mode", { room: this.roomView.room, seconds }));
  }

  async deleteLine(button) {
    const line = button.closest(".feed-item");
    const seq = Number(line?.dataset.seq);
    if (!seq) return;
    await withBusy(button, "Delete", () => this.client.request("chat_delete", { room: this.roomView.room, seq }));
  }

  // ---- drawing -------------------------------------------------------------------

  render() {
    const can = Boolean(this.roomView.info?.live) && this.canModerate();
    document.body.dataset.canModerate = can ? "yes" : "no";
    $("#mod-card").hidden = !can;
    $("#mod-creator-only").hidden = !this.isCreator();
    $("#mod-list").replaceChildren(...this.mods.map((u) => el("li", { class: "mod-item", dataset: { user: u } },
      icon("shield", "inline-icon"), el("span", { class: "who", text: u }),
      this.isCreator() ? el("button", { type: "button", class: "btn small ghost", text: "Remove",
        attrs: { "aria-label": `Remove moderator ${u}` }, onclick: (e) => this.removeMod(u, e.currentTarget) }) : null)));
    $("#mod-list-empty").hidden = this.mods.length > 0;
    $("#banned-list").replaceChildren(...this.banned.map((u) => el("li", { class: "mod-item", dataset: { user: u } },
      el("span", { class: "who", text: u }),
      el("button", { type: "button", class: "btn small ghost", text: "Unban",
        attrs: { "aria-label": `Unban ${u}` }, onclick: (e) => this.act("unban", e.currentTarget, u) }))));
    $("#banned-empty").hidden = this.banned.length > 0;
    if (!this.slowTouched) $("#slow-seconds").value = String(this.slow);
    this.app.live?.renderPins();
    this.renderNote();
  }

  /** The note under the chat box: muted (with the time left) or slow mode. */
  renderNote() {
    const note = $("#mod-note");
    const left = this.mutedUntil - Date.now();
    let text = "";
    if (this.roomView.info?.live && left > 0) text = `You are muted for ${fmt(Math.ceil(left / 1000))} more s.`;
    else if (this.roomView.info?.live && this.slow && !this.canModerate()) text = `Slow mode: one message every ${this.slow} s.`;
    note.hidden = !text;
    note.textContent = text;
    note.dataset.kind = left > 0 ? "muted" : "slow";
  }
}
