// Series (paid premium content): the creator publishes a series of episodes
// (titles and links hosted elsewhere) for a price in coins, lists her own,
// changes a price and stops the sales; a viewer sees the series of the room's
// creator with a lock, buys one once ("Buy to unlock", a fresh key) and then
// reads its episode links. The server sends the links to buyers only.

import { $, el, fmt, newKey, toast, withBusy } from "./ui.js";
import { icon } from "./icons.js";

const EPISODES = 3; // episode rows in the demo's form (the server takes 1-50)
const SHOWN = 20; // series of one creator the viewer panel reads in full

const coins = (n) => [el("span", { class: "coin", attrs: { "aria-hidden": "true" } }), ` ${fmt(n)}`];

export class SeriesPanel {
  constructor(app, roomView) {
    this.app = app;
    this.roomView = roomView;
    this.creator = null; // whose series the viewer panel shows
    this.mine = []; // the creator's own series (summaries)
    this.shown = []; // the room creator's series, each as series_get answers it
    $("#series-form").addEventListener("submit", (e) => { e.preventDefault(); this.publish(); });
    $("#series-reload").addEventListener("click", (e) => withBusy(e.currentTarget, "Series", () => this.loadMine()));
    $("#room-series-reload").addEventListener("click", (e) => withBusy(e.currentTarget, "Series", () => this.loadRoom()));
    $("#series-episodes").replaceChildren(...Array.from({ length: EPISODES }, (_, i) => el("div", { class: "grid-2 episode-row" },
      el("div", { class: "field" }, el("label", { htmlFor: `episode-title-${i}`, text: `Episode ${i + 1} title` }),
        el("input", { id: `episode-title-${i}`, type: "text", maxLength: 100 })),
      el("div", { class: "field" }, el("label", { htmlFor: `episode-url-${i}`, text: `Episode ${i + 1} URL` }),
        el("input", { id: `episode-url-${i}`, type: "url", maxLength: 500, spellcheck: false, placeholder: "https://…" })))));
    roomView.onChange((info) => {
      const creator = info?.creator || null;
      if (creator !== this.creator) {
        this.creator = creator;
        this.shown = [];
        this.renderRoom();
        if (creator && this.app.role !== "creator") this.loadRoom().catch(() => {});
      }
    });
  }

  get client() {
    return this.app.client;
  }

  /** Called after every successful hello. */
  async ready() {
    if (this.app.role === "creator") {
      if (!$("#series-id").value) $("#series-id").value = `${this.app.me()}-series-${Math.floor(Math.random() * 900 + 100)}`;
      await this.loadMine();
    } else if (this.creator) {
      await this.loadRoom();
    }
  }

  // ---- the creator's side ----------------------------------------------------

  async loadMine() {
    this.mine = await this.client.requestAll("series_list", "series", { creator: this.app.me() });
    this.renderMine();
  }

  async publish() {
    const episodes = [];
    for (let i = 0; i < EPISODES; i += 1) {
      const title = $(`#episode-title-${i}`).value.trim();
      const url = $(`#episode-url-${i}`).value.trim();
      if (title || url) episodes.push({ title, url });
    }
    const args = {
      series: $("#series-id").value.trim(),
      title: $("#series-title").value.trim(),
      description: $("#series-description").value.trim(),
      price: Number($("#series-price").value),
      episodes,
    };
    await withBusy($("#series-publish-btn"), "Publishing the series", async () => {
      const reply = await this.client.request("series_publish", args);
      toast("success", "Series published", `${reply.title}: ${reply.episodes.length} episodes for ${fmt(reply.price)} coins.`, { timeout: 3000 });
      $("#series-form").reset();
      $("#series-id").value = `${this.app.me()}-series-${Math.floor(Math.random() * 900 + 100)}`;
      await this.loadMine();
    });
  }

  async setPrice(s, input, button) {
    await withBusy(button, "Changing the price", async () => {
      const reply = await this.client.request("series_price", { series: s.series, price: Number(input.value) });
      s.price = reply.price;
      this.renderMine();
      toast("success", "Price saved", `${s.title}: ${fmt(reply.price)} coins for new buyers.`, { timeout: 3000 });
    });
  }

  async unpublish(s, button) {
    await withBusy(button, "Unpublishing", async () => {
      await this.client.request("series_unpublish", { series: s.series });
      s.published = false;
      this.renderMine();
    });
  }

  renderMine() {
    $("#my-series-empty").hidden = this.mine.length > 0;
    $("#my-series").replaceChildren(...this.mine.map((s) => {
      const price = el("input", { type: "number", min: "1", max: "1000000", step: "1", value: String(s.price),
        class: "series-price-input", attrs: { "aria-label": `Price of ${s.title} in coins`, inputmode: "numeric" } });
      return el("li", { class: "series-item", dataset: { series: s.series, published: s.published ? "yes" : "no" }, attrs: { "data-testid": "my-series-item" } },
        el("div", { class: "series-head" }, icon(s.published ? "film" : "lock", "inline-icon"),
          el("strong", { class: "series-title", text: s.title }),
          el("span", { class: `pill${s.published ? " on" : ""}`, text: s.published ? "On sale" : "Unpublished", attrs: { "data-testid": "series-state" } })),
        el("span", { class: "muted small-text", text: `${s.series} · ${s.episodes} episode${s.episodes === 1 ? "" : "s"}` }),
        el("span", { class: "series-price", attrs: { "data-testid": "series-price" } }, ...coins(s.price)),
        s.published ? el("div", { class: "row series-actions" }, price,
          el("button", { type: "button", class: "btn small", text: "Save price", attrs: { "aria-label": `Save the price of ${s.title}` },
            onclick: (e) => this.setPrice(s, price, e.currentTarget) }),
          el("button", { type: "button", class: "btn small danger", text: "Unpublish", attrs: { "aria-label": `Unpublish ${s.title}` },
            onclick: (e) => this.unpublish(s, e.currentTarget) })) : null);
    }));
  }

  // ---- the viewer's side -----------------------------------------------------

  async loadRoom() {
    const creator = this.creator;
    if (!creator) return;
    const listed = (await this.client.requestAll("series_list", "series", { creator })).slice(0, SHOWN);
    const full = await Promise.all(listed.map((s) => this.client.request("series_get", { series: s.series })));
    if (creator !== this.creator) return; // another room meanwhile
    this.shown = full;
    this.renderRoom();
  }

  async buy(s, button) {
    await withBusy(button, `Buying ${s.title}`, async () => {
      // A fresh key per click; a retry after a lost reply reuses it (paid once).
      const reply = await this.client.request("series_buy", { series: s.series, key: newKey() }, { retry: true });
      if (typeof reply.coins === "number") this.app.onWallet({ coins: reply.coins });
      const unlocked = await this.client.request("series_get", { series: s.series });
      this.shown = this.shown.map((x) => (x.series === s.series ? unlocked : x));
      this.renderRoom();
      toast("success", "Unlocked!", `${s.title}: ${reply.paid ? `${fmt(reply.paid)} coins paid` : "already yours"}.`, { timeout: 3000 });
    });
  }

  renderRoom() {
    const empty = $("#room-series-empty");
    empty.hidden = this.shown.length > 0;
    empty.textContent = this.creator ? `@${this.creator} has no series on sale.` : "Join a room to see its creator's series.";
    $("#room-series-reload").disabled = !this.creator;
    $("#room-series").replaceChildren(...this.shown.map((s) => {
      const open = s.purchased || s.episodes.some((e) => e.url);
      const episodes = el("ol", { class: "episodes", attrs: { "data-testid": "episodes" } }, ...s.episodes.map((e) => el("li", {},
        open && e.url ? el("a", { href: e.url, target: "_blank", rel: "noopener noreferrer", text: e.title })
          : el("span", { class: "locked-episode" }, icon("lock", "inline-icon"), ` ${e.title}`))));
      return el("li", { class: "series-item", dataset: { series: s.series, unlocked: open ? "yes" : "no" }, attrs: { "data-testid": "series-item" } },
        el("div", { class: "series-head" }, icon(open ? "film" : "lock", "inline-icon"),
          el("strong", { class: "series-title", text: s.title }),
          el("span", { class: "series-price", attrs: { "data-testid": "series-price" } }, ...coins(s.price))),
        s.description ? el("p", { class: "muted small-text series-description", text: s.description }) : null,
        episodes,
        open ? el("span", { class: "pill on", text: "Unlocked", attrs: { "data-testid": "series-unlocked" } })
          : el("button", { type: "button", class: "btn primary small", text: "Buy to unlock",
            attrs: { "aria-label": `Buy ${s.title} to unlock for ${s.price} coins` }, onclick: (e) => this.buy(s, e.currentTarget) }));
    }));
  }
}
