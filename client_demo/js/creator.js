// The creator's controls: going live and ending the LIVE, subscriber-only
// chat, subscription price, products and pinning, earnings and withdrawals.

import { $, el, fmt, dollars, diamondsToCents, newKey, setCount, toast, withBusy, showError } from "./ui.js";
import { icon } from "./icons.js";

const WALLET_POLL_MS = 10000;

export class CreatorControls {
  constructor(app, roomView) {
    this.app = app;
    this.roomView = roomView;
    this.products = [];
    this.poll = null;
    $("#room-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.openRoom();
    });
    $("#room-close-btn").addEventListener("click", (e) => this.closeRoom(e.currentTarget));
    $("#chat-mode-toggle").addEventListener("change", (e) => this.setChatMode(e.currentTarget));
    $("#sub-price-btn").addEventListener("click", (e) => this.setSubPrice(e.currentTarget));
    $("#wallet-refresh").addEventListener("click", (e) => withBusy(e.currentTarget, "Wallet", () => this.app.refreshWallet(true)));
    $("#products-refresh").addEventListener("click", (e) => withBusy(e.currentTarget, "Products", () => this.loadProducts()));
    $("#product-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.createProduct();
    });
    $("#withdraw-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.withdraw();
    });
    roomView.onChange((info) => this.renderRoomState(info));
  }

  get client() {
    return this.app.client;
  }

  prefill(user) {
    if (!$("#room-id").value) $("#room-id").value = user;
    if (!$("#room-title").value) $("#room-title").value = `${user} is LIVE`;
    if (!$("#product-id").value) $("#product-id").value = `${user}-merch-${Math.floor(Math.random() * 900 + 100)}`;
    if (!$("#product-title").value) $("#product-title").value = `${user} signed photo`;
  }

  /** Called after every successful hello. */
  async ready(firstTime) {
    const jobs = [this.loadProducts(), this.loadWithdrawals()];
    if (firstTime && !this.roomView.room) jobs.push(this.findOwnRoom());
    await Promise.allSettled(jobs);
    clearInterval(this.poll);
    // Wallet events carry settlement as it happens; this is a safety net only.
    this.poll = setInterval(() => {
      if (this.client?.ready) this.app.refreshWallet(false).catch(() => {});
    }, WALLET_POLL_MS);
  }

  stop() {
    clearInterval(this.poll);
  }

  setCatalog(catalog) {
    const select = $("#sub-price-select");
    const prices = catalog.sub_prices ?? [];
    select.replaceChildren(...prices.map((p) => el("option", { value: String(p), text: `${fmt(p)} coins` })));
  }

  /** After a reload the creator may already be live: show that room. */
  async findOwnRoom() {
    try {
      const rooms = await this.client.requestAll("rooms", "rooms");
      const mine = rooms.find((r) => r.creator === this.app.me());
      if (mine) {
        $("#room-id").value = mine.room;
        $("#room-title").value = mine.title ?? "";
        await this.roomView.join(mine.room);
      }
    } catch (error) {
      showError(error, "Looking for your room");
    }
  }

  // ---- room ------------------------------------------------------------------

  async openRoom() {
    const form = $("#room-form");
    if (!form.reportValidity()) return;
    const room = $("#room-id").value.trim();
    const title = $("#room-title").value.trim();
    await withBusy($("#room-open-btn"), "Going LIVE", async () => {
      await this.client.request("room_open", { room, title });
      await this.roomView.join(room);
      this.app.saveRoom(room);
      toast("success", "You are LIVE", "Viewers can find your room in their list now.", { timeout: 3000 });
    });
    this.renderRoomState(this.roomView.info);
  }

  async closeRoom(button) {
    const room = this.roomView.room;
    if (!room) return;
    await withBusy(button, "Ending the LIVE", async () => {
      await this.client.request("room_close", { room });
    });
    this.renderRoomState(this.roomView.info);
  }

  renderRoomState(info) {
    const live = Boolean(info?.live);
    const mine = info && info.creator === this.app.me();
    $("#room-open-btn").disabled = live;
    $("#room-close-btn").disabled = !live || !mine;
    $("#room-id").disabled = live;
    $("#room-title").disabled = live;
    if (live && mine) {
      // Back in her room after a reload: the form shows that room, not the defaults.
      $("#room-id").value = info.room;
      $("#room-title").value = info.title ?? "";
    }
    const state = $("#studio-state");
    state.textContent = live ? "LIVE" : "Offline";
    state.dataset.live = live ? "yes" : "no";
    const toggle = $("#chat-mode-toggle");
    toggle.disabled = !live || !mine;
    toggle.checked = Boolean(info?.subscribersOnly);
    if (info?.subPrice && !this.subPriceTouched) $("#sub-price-select").value = String(info.subPrice);
    this.renderProducts();
  }

  async setChatMode(toggle) {
    const room = this.roomView.room;
    const wanted = toggle.checked;
    if (!room) return;
    try {
      toggle.disabled = true;
      const reply = await this.client.request("chat_mode", { room, subscribers_only: wanted });
      if (this.roomView.info) {
        this.roomView.info.subscribersOnly = Boolean(reply.subscribers_only ?? wanted);
        this.roomView.renderChatMode();
      }
    } catch (error) {
      toggle.checked = !wanted;
      showError(error, "Chat mode");
    } finally {
      toggle.disabled = !this.roomView.info?.live;
    }
  }

  async setSubPrice(button) {
    const price = Number($("#sub-price-select").value);
    if (!price) return;
    this.subPriceTouched = true;
    await withBusy(button, "Subscription price", async () => {
      const reply = await this.client.request("sub_price", { price });
      this.app.subs.onSubPrice(reply.price ?? price); // tier 1 is the price
      toast("success", "Price saved", `New subscriptions cost ${fmt(reply.price ?? price)} coins.`, { timeout: 3000 });
    });
  }

  // ---- products ----------------------------------------------------------------

  async loadProducts() {
    this.products = await this.client.requestAll("products", "products");
    for (const p of this.products) this.app.products.set(p.product, p);
    this.renderProducts();
  }

  onProductStock(product, stock) {
    const p = this.products.find((x) => x.product === product);
    if (p) {
      p.stock = stock;
      this.renderProducts();
    }
  }

  renderProducts() {
    const pinned = this.roomView.info?.pinned?.product ?? null;
    const canPin = Boolean(this.roomView.info?.live && this.roomView.info.creator === this.app.me());
    const me = this.app.me();
    const sorted = [...this.products].sort((a, b) => (b.seller === me) - (a.seller === me));
    $("#product-list").replaceChildren(...sorted.map((p) => {
      const isPinned = p.product === pinned;
      return el("li", { class: `product${isPinned ? " pinned-now" : ""}`, dataset: { product: p.product }, attrs: { "data-testid": "product-item" } },
        el("span", { class: "product-info" },
          el("strong", { text: p.title }),
          el("span", { class: "muted small-text" },
            el("span", { class: "coin", attrs: { "aria-hidden": "true" } }),
            ` ${fmt(p.price)} · ${fmt(p.stock)} left · ${p.seller === me ? "yours" : `by @${p.seller}`}`
            + ` · you earn ${((p.seller === me ? 10000 - 800 : p.commission ?? 1000) / 100).toFixed(0)}%`)),
        isPinned
          ? el("button", { type: "button", class: "btn small ghost", text: "Unpin",
            attrs: { "aria-label": `Unpin ${p.title}` }, onclick: (e) => this.pin(null, e.currentTarget) })
          : el("button", { type: "button", class: "btn small", text: "Pin", disabled: !canPin,
            attrs: { "aria-label": `Pin ${p.title}` }, onclick: (e) => this.pin(p.product, e.currentTarget) }));
    }));
  }

  async pin(product, button) {
    const room = this.roomView.room;
    if (!room) return;
    await withBusy(button, product ? "Pinning" : "Unpinning", async () => {
      await this.client.request("pin", { room, product });
    });
    this.renderProducts();
  }

  async createProduct() {
    const form = $("#product-form");
    if (!form.reportValidity()) return;
    const args = {
      product: $("#product-id").value.trim(),
      title: $("#product-title").value.trim(),
      price: Number($("#product-price").value),
      stock: Number($("#product-stock").value),
    };
    await withBusy($("#product-create-btn"), "Creating the product", async () => {
      const product = await this.client.request("product_create", args);
      const created = { ...args, seller: this.app.me(), ...product };
      this.products = [created, ...this.products.filter((p) => p.product !== created.product)];
      this.app.products.set(created.product, created);
      toast("success", "Product created", created.title, { timeout: 3000 });
      $("#product-id").value = `${this.app.me()}-merch-${Math.floor(Math.random() * 900 + 100)}`;
      if ($("#product-pin-now").checked && this.roomView.info?.live) {
        await this.client.request("pin", { room: this.roomView.room, product: created.product });
      }
      this.renderProducts();
    });
  }

  // ---- earnings ------------------------------------------------------------------

  renderWallet(wallet) {
    if (typeof wallet.diamonds === "number") {
      setCount($("#diamonds-available"), wallet.diamonds);
      $("#diamonds-cash").textContent = `≈ ${dollars(diamondsToCents(wallet.diamonds))} to withdraw`;
    }
    if (typeof wallet.pending === "number") setCount($("#diamonds-pending"), wallet.pending);
  }

  async withdraw() {
    const amount = Number($("#withdraw-amount").value);
    if (!Number.isInteger(amount) || amount <= 0) {
      toast("error", "Enter a whole number of diamonds", "The minimum is 2,000 diamonds.");
      return;
    }
    await withBusy($("#withdraw-btn"), "Withdrawing", async () => {
      const reply = await this.client.request("withdraw", { diamonds: amount, key: newKey() }, { retry: true });
      this.app.onWallet({ diamonds: reply.diamonds });
      const cash = typeof reply.cents === "number" ? dollars(reply.cents) : dollars(diamondsToCents(amount));
      toast("success", "Withdrawal requested", `${fmt(amount)} diamonds → ${cash}`);
      await this.loadWithdrawals();
    });
  }

  async loadWithdrawals() {
    try {
      const reply = await this.client.request("withdrawals");
      this.renderWithdrawals(reply.withdrawals ?? []);
    } catch (error) {
      if (error.code !== "offline") showError(error, "Withdrawals");
    }
  }

  renderWithdrawals(list) {
    const ul = $("#withdrawal-list");
    if (!list.length) {
      ul.replaceChildren(el("li", { class: "empty", text: "None yet." }));
      return;
    }
    ul.replaceChildren(...list.slice(0, 10).map((w) => el("li", { class: "withdrawal" },
      el("span", {}, icon("gem", "inline-icon"), ` ${fmt(w.diamonds)}`),
      el("span", { class: "muted", text: typeof w.cents === "number" ? dollars(w.cents) : "" }),
      el("span", { class: `pill status-${w.status ?? "requested"}`, text: w.status ?? "requested" }))));
  }
}
