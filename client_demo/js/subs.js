// Subscription tiers and gifted subs. The creator sets up to three tier
// prices (from the catalogue's `sub_prices`); a viewer subscribes at a tier,
// renews, upgrades mid-period (the server charges the pro-rata price and says
// how much in the reply's `paid`), and gifts subs to random viewers present.
// The room's `sub` and `sub_upgrade` events become feed lines; chat lines from
// subscribers carry `sub_badge` {tier, months}, drawn by tierBadge().
//
// RoomView hands this part every join and event (app.extras).

import { $, el, fmt, formatDate, newKey, toast, withBusy } from "./ui.js";
import { icon } from "./icons.js";

const MAX_TIERS = 3;
const MAX_GIFTS = 10; // the demo's cap per click (the server takes 1-50)

const coin = () => el("span", { class: "coin", attrs: { "aria-hidden": "true" } });
const months = (n) => `${fmt(n)} month${n === 1 ? "" : "s"}`;
export const tierName = (tier) => `Tier ${tier}`;

/** The badge of a subscriber's chat line or of the viewer's own card: "T2 · 3 mo". */
export function tierBadge(badge, testid = "sub-level") {
  if (!badge || !badge.tier) return null;
  return el("span", {
    class: `badge-tier tier-${badge.tier}`,
    text: `T${badge.tier} · ${fmt(badge.months ?? 0)} mo`,
    attrs: { title: `${tierName(badge.tier)} subscriber, ${months(badge.months ?? 0)}`, "data-testid": testid },
  });
}

/** The feed text of a `sub` event: who, the tier, the months, and who gifted it. */
export function subText(ev) {
  const tier = ev.tier ? ` ${tierName(ev.tier)}` : "";
  const loyal = typeof ev.months === "number" ? ` · ${months(ev.months)}` : "";
  if (ev.gifted) return `got a${tier} sub gifted by ${ev.by}${loyal} `;
  return `subscribed${tier ? ` at${tier}` : ""}${loyal}! `;
}

export class SubsPanel {
  constructor(app, roomView) {
    this.app = app;
    this.roomView = roomView;
    this.catalogPrices = [];
    this.myTiers = null; // the creator's own tiers, as her room's join or sub_tiers answered
    $("#tiers-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.saveTiers();
    });
    $("#sub-gift-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.gift();
    });
    $("#sub-gift-count").max = String(MAX_GIFTS);
    roomView.onChange((info) => this.render(info));
  }

  get client() {
    return this.app.client;
  }

  setCatalog(catalog) {
    this.catalogPrices = [...(catalog.sub_prices ?? [])].sort((a, b) => a - b);
    for (let t = 1; t <= MAX_TIERS; t += 1) {
      const options = this.catalogPrices.map((p) => el("option", { value: String(p), text: `${fmt(p)} coins` }));
      if (t > 1) options.unshift(el("option", { value: "", text: "Not offered" }));
      $(`#tier-price-${t}`).replaceChildren(...options);
    }
    this.fillTierForm(this.myTiers ?? this.catalogPrices.slice(0, MAX_TIERS));
  }

  // ---- RoomView extras --------------------------------------------------------

  reset() {
    $("#sub-last-charge").hidden = true;
    $("#sub-gift-result").hidden = true;
  }

  applyJoin(reply) {
    const info = this.roomView.info;
    if (!info) return;
    info.subTiers = reply.sub_tiers ?? info.subTiers ?? (info.subPrice ? [info.subPrice] : []);
    info.subTier = reply.sub_tier ?? 0;
    info.subMonths = reply.sub_months ?? 0;
    if (info.creator && info.creator === this.app.me()) this.showMyTiers(info.subTiers);
  }

  handleEvent(ev) {
    const info = this.roomView.info;
    if (!info) return;
    const mine = ev.from === this.app.me();
    if (ev.ev === "sub" && mine) {
      info.subTier = ev.tier ?? info.subTier;
      info.subMonths = ev.months ?? info.subMonths;
      info.subscribedUntil = Math.max(info.subscribedUntil ?? 0, ev.until ?? 0);
      if (ev.gifted) toast("success", `${ev.by} gifted you a sub!`, `${tierName(ev.tier)} until ${formatDate(ev.until)}.`, { timeout: 4000 });
      this.roomView.changed();
    } else if (ev.ev === "sub_upgrade") {
      this.roomView.feedPush(el("li", { class: "feed-item sub", dataset: { kind: "sub_upgrade", seq: ev.seq ?? "" } },
        el("span", { class: "who", text: ev.from }),
        el("span", { class: "text" }, `upgraded to ${tierName(ev.tier)} (from ${tierName(ev.was)}) `, icon("party", "inline-icon"))));
      if (mine) {
        info.subTier = ev.tier;
        this.roomView.changed();
      }
    }
  }

  // ---- the creator: tier prices ------------------------------------------------

  fillTierForm(prices) {
    for (let t = 1; t <= MAX_TIERS; t += 1) {
      const p = prices[t - 1];
      $(`#tier-price-${t}`).value = p ? String(p) : (t > 1 ? "" : String(this.catalogPrices[0] ?? ""));
    }
  }

  showMyTiers(prices) {
    this.myTiers = [...prices];
    this.fillTierForm(this.myTiers);
    $("#my-tiers").replaceChildren(...this.myTiers.map((p, i) => el("li",
      { class: "tier-item", dataset: { tier: String(i + 1) }, attrs: { "data-testid": "my-tier" } },
      el("strong", { text: tierName(i + 1) }), el("span", { class: "tier-price" }, coin(), ` ${fmt(p)}`))));
  }

  /** `sub_price` set tier 1: a higher tier that no longer costs more is dropped (as the
   * server does). */
  onSubPrice(price) {
    const tiers = this.myTiers ?? this.catalogPrices.slice(0, MAX_TIERS);
    this.showMyTiers([price, ...tiers.slice(1).filter((p) => p > price)]);
  }

  async saveTiers() {
    const prices = [];
    for (let t = 1; t <= MAX_TIERS; t += 1) {
      const value = $(`#tier-price-${t}`).value;
      if (value) prices.push(Number(value));
    }
    // The server checks the prices (catalogue values, each higher than the last).
    await withBusy($("#tiers-save"), "Subscription tiers", async () => {
      const reply = await this.client.request("sub_tiers", { prices });
      this.showMyTiers(reply.prices);
      const info = this.roomView.info;
      if (info && info.creator === this.app.me()) {
        info.subTiers = reply.prices;
        info.subPrice = reply.prices[0];
      }
      $("#sub-price-select").value = String(reply.prices[0]);
      toast("success", "Tiers saved", reply.prices.map((p, i) => `${tierName(i + 1)}: ${fmt(p)}`).join(" · "), { timeout: 3000 });
    });
  }

  // ---- the viewer: subscribe at a tier, upgrade, gift ----------------------------

  active(info) {
    return Boolean(info && (info.subscribedUntil ?? 0) * 1000 > Date.now());
  }

  render(info) {
    if (this.app.role === "creator") return;
    const active = this.active(info);
    const current = active ? info.subTier ?? 0 : 0;
    const tiers = info?.subTiers ?? [];
    $("#sub-tiers").replaceChildren(...tiers.map((price, i) => {
      const tier = i + 1;
      let verb = "Subscribe";
      let label = `Subscribe at ${tierName(tier)} for ${price} coins`;
      if (current && tier === current) [verb, label] = ["Renew", `Renew ${tierName(tier)} for ${price} coins`];
      else if (current && tier > current) [verb, label] = ["Upgrade", `Upgrade to ${tierName(tier)}`];
      else if (current) [verb, label] = ["Downgrade", `Downgrade to ${tierName(tier)}`];
      return el("li", { class: `tier-item${tier === current ? " current" : ""}`,
        dataset: { tier: String(tier), current: tier === current ? "yes" : "no" }, attrs: { "data-testid": "sub-tier" } },
      el("strong", { text: tierName(tier) }),
      el("span", { class: "tier-price" }, coin(), ` ${fmt(price)}`),
      tier === current ? el("span", { class: "pill on", text: "Your tier" }) : null,
      el("button", { type: "button", class: `btn small${verb === "Upgrade" ? " primary" : ""}`, text: verb,
        disabled: !info, attrs: { "aria-label": label }, onclick: (e) => this.subscribe(tier, e.currentTarget) }));
    }));
    const detail = $("#sub-detail");
    detail.replaceChildren(...(active && current
      ? ["Your badge: ", el("span", { class: "badge-sub", text: "SUB" }),
        tierBadge({ tier: current, months: info.subMonths ?? 0 }, "my-sub-badge"),
        ` ${months(info.subMonths ?? 0)} with @${info.creator}`]
      : [info?.subMonths ? `${months(info.subMonths)} with @${info.creator} so far.` : ""]));
    const select = $("#sub-gift-tier");
    const chosen = select.value;
    select.replaceChildren(...tiers.map((price, i) => el("option", { value: String(i + 1), text: `${tierName(i + 1)} · ${fmt(price)} coins` })));
    if (chosen && Number(chosen) <= tiers.length) select.value = chosen;
    $("#sub-gift-btn").disabled = !info?.live;
  }

  /** Subscribe at `tier`: new, renewal or upgrade, as the server decides. */
  async subscribe(tier, button) {
    const room = this.roomView.room;
    if (!room) return;
    await withBusy(button, `${tierName(tier)}`, async () => {
      // A fresh key per click; a retry after a lost reply reuses it (charged once).
      const reply = await this.client.request("subscribe", { room, tier, key: newKey() }, { retry: true });
      this.afterSubscribe(reply);
    });
  }

  /** The reply of a subscribe (from here or the card's Subscribe button). */
  afterSubscribe(reply) {
    const info = this.roomView.info;
    if (typeof reply.coins === "number") this.app.onWallet({ coins: reply.coins });
    if (info) {
      info.subscribedUntil = reply.until ?? info.subscribedUntil;
      info.subTier = reply.tier ?? info.subTier;
      info.subMonths = reply.months ?? info.subMonths;
      this.roomView.changed();
    }
    const paid = reply.paid ?? 0;
    const what = {
      upgrade: `Upgraded to ${tierName(reply.tier)}: ${fmt(paid)} coins, pro rata for the time left`,
      renew: `Renewed ${tierName(reply.tier)}: ${fmt(paid)} coins for 30 more days`,
      new: `Subscribed at ${tierName(reply.tier)}: ${fmt(paid)} coins`,
    }[reply.mode] ?? `Subscribed: ${fmt(paid)} coins`;
    const line = $("#sub-last-charge");
    line.textContent = `${what}.`;
    line.dataset.paid = String(paid);
    line.dataset.mode = reply.mode ?? "";
    line.hidden = false;
    toast("success", reply.mode === "upgrade" ? "Upgraded!" : "Subscribed!",
      `${what}. Your badge shows in chat until ${formatDate(reply.until)}.`, { timeout: 4000 });
  }

  async gift() {
    const room = this.roomView.room;
    const form = $("#sub-gift-form");
    if (!room || !form.reportValidity()) return;
    const count = Number($("#sub-gift-count").value);
    const tier = Number($("#sub-gift-tier").value) || 1;
    await withBusy($("#sub-gift-btn"), "Gifting subs", async () => {
      // One key per click: a retry after a lost reply gives the same recipients, paid once.
      const reply = await this.client.request("sub_gift", { room, tier, count, key: newKey() }, { retry: true });
      if (typeof reply.coins === "number") this.app.onWallet({ coins: reply.coins });
      const who = reply.recipients.join(", ");
      const text = `${fmt(reply.recipients.length)} × ${tierName(reply.tier)} to ${who}: ${fmt(reply.paid)} coins.`;
      const result = $("#sub-gift-result");
      result.textContent = `Gifted ${text}`;
      result.dataset.paid = String(reply.paid);
      result.hidden = false;
      toast("success", "Subs gifted!", text, { timeout: 4000 });
    });
  }
}
