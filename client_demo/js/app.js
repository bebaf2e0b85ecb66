// Entry point: demo login, the connection, and wiring of the two views.

import { LiveClient } from "./client.js";
import { RoomView } from "./room.js";
import { ViewerControls } from "./viewer.js";
import { CreatorControls } from "./creator.js";
import { LiveExtras } from "./live.js";
import { ModerationTools } from "./moderation.js";
import { SeriesPanel } from "./series.js";
import { SubsPanel } from "./subs.js";
import { $, setCount, showError, toast } from "./ui.js";
import { fillIcons, icon } from "./icons.js";

const SESSION_KEY = "livesrv.demo.session";
const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;
// The demo's two ages: a birth year in the token lets the server's age gates decide.
const AGE_YEARS = { adult: 30, minor: 15 };

/** The birth year the demo login sends for an age choice ("adult" or "minor"). */
function birthYear(age) {
  return new Date().getUTCFullYear() - (AGE_YEARS[age] ?? AGE_YEARS.adult);
}

const STATUS_TEXT = {
  idle: "Not connected",
  connecting: "Connecting…",
  online: "Connected",
  reconnecting: "Reconnecting…",
  offline: "Connection lost, retrying…",
};

class App {
  constructor() {
    this.config = null;
    this.client = null;
    this.session = null; // {user, role, token}
    this.role = null;
    this.products = new Map(); // product id -> product object
    this.catalog = null;
    fillIcons();
    this.roomView = new RoomView(this);
    this.viewer = new ViewerControls(this, this.roomView);
    this.creator = new CreatorControls(this, this.roomView);
    // LIVE mechanics and moderation: RoomView hands them every join and event.
    this.live = new LiveExtras(this, this.roomView);
    this.moderation = new ModerationTools(this, this.roomView);
    this.subs = new SubsPanel(this, this.roomView); // subscription tiers and gifted subs
    this.extras = [this.live, this.moderation, this.subs];
    this.series = new SeriesPanel(this, this.roomView);
    this.onProductStock = (product, stock) => this.creator.onProductStock(product, stock);
    $("#login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.login();
    });
    $("#logout-btn").addEventListener("click", () => this.logout());
    // Exposed for trying reconnection by hand from the console.
    window.livesrvDemo = { drop: () => this.client?.drop(), app: this };
  }

  me() {
    return this.session?.user ?? null;
  }

  async boot() {
    try {
      const res = await fetch("client.json", { cache: "no-store" });
      if (!res.ok) throw new Error(`client.json answered ${res.status}`);
      this.config = await res.json();
    } catch (error) {
      this.loginError(`Cannot reach the server: ${error.message}`);
      return;
    }
    if (!this.config.demo) {
      this.loginError("Demo login is off on this server (start it with `livesrv serve --demo`).");
      $("#login-submit").disabled = true;
    }
    const saved = this.loadSession();
    if (saved) {
      $("#login-name").value = saved.user;
      const radio = document.querySelector(`input[name=role][value="${saved.role}"]`);
      if (radio) radio.checked = true;
      if (saved.age) $("#login-age").value = saved.age;
      if (this.config.demo && saved.active) await this.login(saved.room);
    } else {
      $("#login-name").value = `guest${Math.floor(1000 + Math.random() * 9000)}`;
    }
  }

  wsUrl() {
    const url = new URL(this.config.ws_url, window.location.href);
    // A server bound to every interface advertises 0.0.0.0: use the host we reached.
    if (["0.0.0.0", "::", "[::]"].includes(url.hostname)) url.hostname = window.location.hostname;
    if (url.protocol === "http:") url.protocol = "ws:";
    if (url.protocol === "https:") url.protocol = "wss:";
    return url.toString();
  }

  loginError(text) {
    $("#login-error").textContent = text;
  }

  async demoLogin(user, role, age = "adult") {
    const res = await fetch("demo/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user, role, birth_year: birthYear(age) }),
    });
    let body = null;
    try {
      body = await res.json();
    } catch {
      body = null;
    }
    if (!res.ok || !body?.token) {
      const message = body?.error?.message ?? body?.message ?? body?.error ?? `HTTP ${res.status}`;
      throw Object.assign(new Error(typeof message === "string" ? message : JSON.stringify(message)), { code: "http" });
    }
    return body;
  }

  async login(room = null) {
    const user = $("#login-name").value.trim();
    const role = document.querySelector("input[name=role]:checked")?.value ?? "viewer";
    const age = $("#login-age").value === "minor" ? "minor" : "adult";
    if (!NAME_RE.test(user)) {
      this.loginError("Use 1 to 64 letters, digits, dots, dashes or underscores.");
      $("#login-name").focus();
      return;
    }
    this.loginError("");
    const button = $("#login-submit");
    button.disabled = true;
    try {
      const body = await this.demoLogin(user, role, age);
      this.session = { user: body.user ?? user, role: body.role ?? role, age, token: body.token };
    } catch (error) {
      this.loginError(`Login failed: ${error.message}`);
      button.disabled = false;
      return;
    }
    button.disabled = false;
    this.role = this.session.role;
    this.pendingRoom = room;
    this.saveSession({ active: true, room });
    this.enter();
  }

  enter() {
    const { user, role } = this.session;
    document.body.dataset.screen = "app";
    document.body.dataset.role = role;
    $("#login-view").hidden = true;
    $("#app-view").hidden = false;
    $("#me").hidden = false;
    $("#me-name").textContent = user;
    $("#me-avatar").textContent = user.charAt(0).toUpperCase();
    $("#me-role").replaceChildren(icon(role === "creator" ? "camera" : "gift", "inline-icon"), ` ${role}`,
      this.session.age === "minor" ? " · under 18" : "");
    for (const node of document.querySelectorAll("[data-for]")) {
      node.hidden = node.dataset.for !== role;
    }
    document.title = role === "creator" ? `Studio · ${user} · livesrv` : `Watch · ${user} · livesrv`;
    $("#app-heading").textContent = role === "creator" ? `${user}'s studio` : `Watch live rooms as ${user}`;
    if (role === "creator") this.creator.prefill(user);
    this.roomView.setStageState("empty");
    this.firstReady = true;
    this.client = new LiveClient({
      url: this.wsUrl(),
      getToken: (refresh) => this.token(refresh),
      onEvent: (ev) => this.onEvent(ev),
      onReady: (hello, reconnected) => this.onReady(hello, reconnected),
      onStatus: (state, detail) => this.onStatus(state, detail),
      onStrayError: (error) => showError(error),
    });
    this.client.start();
    $("#main").focus({ preventScroll: true });
  }

  async token(refresh) {
    if (refresh || !this.session.token) {
      const body = await this.demoLogin(this.session.user, this.session.role, this.session.age);
      this.session.token = body.token;
    }
    return this.session.token;
  }

  async onReady(hello, reconnected) {
    this.onWallet(hello);
    const first = this.firstReady;
    this.firstReady = false;
    if (!this.catalog) {
      try {
        this.catalog = await this.client.request("catalog");
        this.viewer.setCatalog(this.catalog);
        this.creator.setCatalog(this.catalog);
        this.live.setCatalog(this.catalog);
        this.subs.setCatalog(this.catalog);
      } catch (error) {
        showError(error, "Loading the gift catalogue");
      }
    }
    if (reconnected && this.roomView.room) {
      await this.roomView.rejoin();
    } else if (first && this.pendingRoom) {
      try {
        await this.roomView.join(this.pendingRoom);
      } catch (error) {
        this.roomView.reset(null);
        this.roomView.setStageState("empty");
        this.saveRoom(null);
        if (error.code !== "not_found") showError(error, "Rejoining your last room");
      }
    }
    const roleReady = this.role === "creator" ? this.creator.ready(first) : this.viewer.ready();
    roleReady.catch((error) => showError(error));
    this.series.ready().catch((error) => showError(error, "Loading series"));
    if (reconnected) toast("success", "Back online", "Caught up on what you missed.", { timeout: 2500 });
  }

  onStatus(state, detail) {
    const box = $("#conn-status");
    box.dataset.state = state;
    $("#conn-text").textContent = STATUS_TEXT[state] ?? state;
    box.title = detail || "";
    if (this.role !== "creator") this.viewer.renderRooms();
  }

  onEvent(ev) {
    if (ev.ev === "wallet") {
      this.onWallet(ev);
      return;
    }
    this.roomView.handleEvent(ev);
  }

  /** Any of {coins, diamonds, pending} from hello, replies or wallet events. */
  onWallet(wallet) {
    if (typeof wallet.coins === "number") {
      this.coins = wallet.coins;
      setCount($("#coin-balance"), wallet.coins);
      setCount($("#wallet-coins"), wallet.coins);
    }
    this.creator.renderWallet(wallet);
  }

  async refreshWallet(loud = false) {
    try {
      this.onWallet(await this.client.request("wallet"));
    } catch (error) {
      if (loud) throw error;
    }
  }

  saveRoom(room) {
    this.saveSession({ active: true, room });
  }

  loadSession() {
    try {
      return JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? "null");
    } catch {
      return null;
    }
  }

  /** Only the name, role and room are kept (never the token). */
  saveSession({ active, room }) {
    if (!this.session) return;
    const data = { user: this.session.user, role: this.session.role, age: this.session.age, active, room: room ?? null };
    try {
      sessionStorage.setItem(SESSION_KEY, JSON.stringify(data));
    } catch {
      // private mode: nothing to keep
    }
  }

  logout() {
    this.saveSession({ active: false, room: null });
    this.client?.stop();
    this.viewer.stop();
    this.creator.stop();
    window.location.reload();
  }
}

const app = new App();
app.boot();
