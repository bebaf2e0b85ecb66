// The Socket.IO comparison server of the join-storm bench (loadtests/bench/joins.py):
// the same join as livesrv's, in Socket.IO's idiom. `hello` (any token; the user is its JWT
// `sub` claim or the token itself) and `join` (room, optional `since`) are events with an
// ack; a join with `since` also gets the room's logged events after it as one `events`
// event. `room_open` and `chat` build a room's log. No store, no money: like the naive
// Python baseline, it shows what a plain server on the same machine does.
//
// Run: node server.js [port]; prints ws://127.0.0.1:PORT/socket.io/?EIO=4&transport=websocket
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 0);
const rooms = new Map(); // name -> { seq, log: [event] }

function room(name) {
  let r = rooms.get(name);
  if (!r) {
    r = { seq: 0, log: [] };
    rooms.set(name, r);
  }
  return r;
}

function userOf(token) {
  const parts = String(token || "").split(".");
  if (parts.length === 3) {
    try {
      return String(JSON.parse(Buffer.from(parts[1], "base64url").toString()).sub);
    } catch (e) {
      // not a JWT: the token is the user
    }
  }
  return String(token || "").slice(0, 64);
}

const server = http.createServer();
const io = new Server(server, {
  transports: ["websocket"],
  serveClient: false,
  perMessageDeflate: false,
  maxHttpBufferSize: 64 * 1024,
});

io.on("connection", (socket) => {
  const ack = (fn, body) => typeof fn === "function" && fn(body);
  socket.on("hello", (msg, fn) => {
    socket.data.user = userOf(msg && msg.token);
    ack(fn, { ok: true, user: socket.data.user, role: "viewer", protocol: 1 });
  });
  socket.on("join", (msg, fn) => {
    if (!socket.data.user) return ack(fn, { ok: false, error: { code: "unauthorized" } });
    const name = String(msg.room);
    const r = room(name);
    socket.join(name);
    const viewers = io.sockets.adapter.rooms.get(name).size;
    const since = msg.since;
    const replay = typeof since === "number" ? r.log.filter((e) => e.seq > since) : [];
    ack(fn, { ok: true, room: name, viewers, seq: r.seq, gap: false });
    if (replay.length) socket.emit("events", replay);
  });
  const publish = (name, ev) => {
    const r = room(name);
    r.seq += 1;
    const event = { ...ev, room: name, seq: r.seq, ts: Date.now() };
    r.log.push(event);
    if (r.log.length > 10000) r.log.shift();
    io.to(name).emit("events", [event]);
    return r.seq;
  };
  socket.on("room_open", (msg, fn) => {
    const seq = publish(String(msg.room), { ev: "room_open", title: String(msg.title || "") });
    ack(fn, { ok: true, room: msg.room, seq });
  });
  socket.on("chat", (msg, fn) => {
    const seq = publish(String(msg.room), { ev: "chat", from: socket.data.user, text: msg.text });
    ack(fn, { ok: true, seq });
  });
});

// Node's default listen backlog (511), as a Socket.IO deployment gets it.
server.listen(port, "127.0.0.1", () => {
  const bound = server.address().port;
  console.log(`ws://127.0.0.1:${bound}/socket.io/?EIO=4&transport=websocket`);
});

for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
