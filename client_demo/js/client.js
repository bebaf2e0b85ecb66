// The protocol v1 client: one WebSocket with the JSON codec, request/reply
// matching by id, batch frames, and automatic reconnection.
//
// Money-moving requests are sent with `retry: true`. They carry their own
// idempotency key, so when the connection drops before the reply, or the
// server answers `unavailable`, the same request (same key) is sent again
// after reconnecting and the server applies it exactly once.

export const SUBPROTOCOL = "livesrv.v1.json";

const BACKOFF_MS = [200, 500, 1000, 2000, 3000];
const REQUEST_TIMEOUT_MS = 10000;
const RETRY_LIMIT = 5;

class ProtocolError extends Error {
  constructor(code, message) {
    super(message || code);
    this.code = code;
  }
}

export class LiveClient {
  /**
   * @param {object} options
   * @param {string} options.url WebSocket URL.
   * @param {(refresh: boolean) => Promise<string>} options.getToken returns a
   *   token; `refresh` asks for a new one after `unauthorized`.
   * @param {(event: object) => void} options.onEvent every server event.
   * @param {(hello: object, reconnected: boolean) => Promise<void>|void} options.onReady
   *   called after each successful hello, before queued requests are resent.
   * @param {(state: string, detail: string) => void} options.onStatus
   * @param {(error: object) => void} options.onStrayError error replies with id null.
   */
  constructor({ url, getToken, onEvent, onReady, onStatus, onStrayError }) {
    this.url = url;
    this.getToken = getToken;
    this.onEvent = onEvent;
    this.onReady = onReady;
    this.onStatus = onStatus;
    this.onStrayError = onStrayError;
    this.ws = null;
    this.ready = false;
    this.stopped = false;
    this.nextId = 1;
    this.pending = new Map(); // id -> request record, sent on the current socket
    this.queue = []; // retryable requests waiting for the next session
    this.attempt = 0;
    this.connectedOnce = false;
    this.refreshToken = false;
    this.reconnectTimer = null;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    for (const record of [...this.pending.values(), ...this.queue]) {
      this.settle(record, false, new ProtocolError("offline", "Logged out."));
    }
    this.pending.clear();
    this.queue = [];
    if (this.ws) this.ws.close(1000, "bye");
    this.ws = null;
  }

  /** Drop the current socket as a network failure would (for testing by hand). */
  drop() {
    if (this.ws) this.ws.close(4000, "dropped by the page");
  }

  status(state, detail = "") {
    this.state = state;
    this.onStatus?.(state, detail);
  }

  connect() {
    clearTimeout(this.reconnectTimer);
    if (this.stopped) return;
    this.status(this.connectedOnce ? "reconnecting" : "connecting");
    let ws;
    try {
      ws = new WebSocket(this.url, [SUBPROTOCOL]);
    } catch (error) {
      this.status("offline", String(error));
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.addEventListener("open", () => this.sayHello(ws));
    ws.addEventListener("message", (msg) => this.receive(ws, msg.data));
    ws.addEventListener("close", (ev) => this.closed(ws, ev));
  }

  async sayHello(ws) {
    let token;
    try {
      token = await this.getToken(this.refreshToken);
    } catch (error) {
      this.status("offline", `Login failed: ${error.message}`);
      ws.close(4000, "no token");
      return;
    }
    this.refreshToken = false;
    if (ws !== this.ws) return;
    let hello;
    try {
      hello = await this.send(ws, { op: "hello", token }, { timeout: REQUEST_TIMEOUT_MS });
    } catch (error) {
      if (error.code === "unauthorized") this.refreshToken = true;
      if (ws.readyState === WebSocket.OPEN) ws.close(4000, "hello failed");
      return;
    }
    if (ws !== this.ws) return;
    const reconnected = this.connectedOnce;
    this.connectedOnce = true;
    this.attempt = 0;
    this.ready = true;
    try {
      await this.onReady?.(hello, reconnected);
    } catch (error) {
      console.warn("onReady failed", error);
    }
    if (ws !== this.ws || !this.ready) return;
    this.status("online");
    const queued = this.queue;
    this.queue = [];
    for (const record of queued) this.transmit(ws, record);
  }

  receive(ws, data) {
    if (ws !== this.ws) return;
    let parsed;
    try {
      parsed = JSON.parse(data);
    } catch {
      console.warn("undecodable frame", data);
      return;
    }
    const messages = Array.isArray(parsed) ? parsed : [parsed];
    for (const message of messages) {
      if (!message || typeof message !== "object") continue;
      if ("ev" in message) {
        try {
          this.onEvent(message);
        } catch (error) {
          console.error("event handler failed", message, error);
        }
      } else if ("id" in message) {
        this.reply(message);
      }
    }
  }

  reply(message) {
    const record = this.pending.get(message.id);
    if (!record) {
      if (message.ok === false) this.onStrayError?.(message.error ?? {});
      return;
    }
    this.pending.delete(message.id);
    clearTimeout(record.timer);
    if (message.ok) {
      this.settle(record, true, message);
      return;
    }
    const error = message.error ?? { code: "internal", message: "" };
    if (error.code === "unavailable" && record.retry && record.tries < RETRY_LIMIT) {
      // Outcome unknown to the server: the same key makes the retry exactly-once.
      setTimeout(() => this.resend(record), 300 * record.tries);
      return;
    }
    this.settle(record, false, new ProtocolError(error.code, error.message));
  }

  resend(record) {
    if (this.ready && this.ws?.readyState === WebSocket.OPEN) this.transmit(this.ws, record);
    else this.queue.push(record);
  }

  settle(record, ok, value) {
    if (record.done) return;
    record.done = true;
    clearTimeout(record.timer);
    if (ok) record.resolve(value);
    else record.reject(value);
  }

  closed(ws, ev) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.ready = false;
    for (const record of this.pending.values()) {
      clearTimeout(record.timer);
      if (record.retry && record.tries < RETRY_LIMIT && record.message.op !== "hello") {
        this.queue.push(record);
      } else if (record.message.op !== "hello") {
        this.settle(record, false,
          new ProtocolError("offline", "The connection dropped before the server answered."));
      } else {
        this.settle(record, false, new ProtocolError("offline", "closed"));
      }
    }
    this.pending.clear();
    if (ev.code === 4401) this.refreshToken = true;
    if (this.stopped) return;
    const why = ev.code === 1001 ? "server restarting" : ev.reason || `code ${ev.code}`;
    this.status("offline", why);
    this.scheduleReconnect(ev.code === 4429 || ev.code === 4409 ? 3000 : 0);
  }

  scheduleReconnect(minimum = 0) {
    if (this.stopped) return;
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    const delay = Math.max(minimum, base) + Math.floor(Math.random() * 150);
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  /**
   * Walk a paged listing (`rooms`, `products`, ...): follow `next` and resolve
   * with every item of `field`, reading at most `maxPages` pages.
   */
  async requestAll(op, field, args = {}, { maxPages = 10 } = {}) {
    const items = [];
    let cursor = null;
    for (let page = 0; page < maxPages; page += 1) {
      const reply = await this.request(op, cursor ? { ...args, limit: 200, cursor } : { ...args, limit: 200 });
      items.push(...(reply[field] ?? []));
      cursor = reply.next ?? null;
      if (!cursor) break;
    }
    return items;
  }

  /**
   * Send a request and resolve with the success reply, or reject with an
   * Error carrying `code` and `message`.
   */
  request(op, args = {}, { retry = false, timeout = REQUEST_TIMEOUT_MS } = {}) {
    const message = { op, ...args };
    return new Promise((resolve, reject) => {
      const record = { message, resolve, reject, retry, timeout, tries: 0, done: false };
      if (this.ready && this.ws?.readyState === WebSocket.OPEN) {
        this.transmit(this.ws, record);
      } else if (retry && !this.stopped) {
        this.queue.push(record);
        record.timer = setTimeout(() => {
          this.queue = this.queue.filter((r) => r !== record);
          this.settle(record, false, new ProtocolError("offline", "Still reconnecting; try again."));
        }, 30000);
      } else {
        reject(new ProtocolError("offline", "The page is reconnecting to the server."));
      }
    });
  }

  /** Raw send used for hello (before the session is ready). */
  send(ws, message, { timeout }) {
    return new Promise((resolve, reject) => {
      const record = { message, resolve, reject, retry: false, timeout, tries: 0, done: false };
      this.transmit(ws, record);
    });
  }

  transmit(ws, record) {
    clearTimeout(record.timer);
    const id = this.nextId++;
    record.tries += 1;
    this.pending.set(id, record);
    record.timer = setTimeout(() => {
      if (this.pending.get(id) !== record) return;
      this.pending.delete(id);
      this.settle(record, false, new ProtocolError("timeout", `No reply to ${record.message.op}.`));
    }, record.timeout);
    try {
      ws.send(JSON.stringify({ id, ...record.message }));
    } catch (error) {
      this.pending.delete(id);
      if (record.retry) this.queue.push(record);
      else this.settle(record, false, new ProtocolError("offline", String(error)));
    }
  }
}
