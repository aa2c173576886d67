// The live connection: one websocket per tab at /ws, subprotocol otj.v1,
// one msgpack map per binary frame (the global MessagePack comes from
// vendor/msgpack.min.js).
//
// The idea: the connection may drop at any moment (a phone on poor Wi-Fi),
// so nothing the person did may live only in the socket. Rooms the page is in
// are rejoined after every reconnect by one `sync` each, which brings only what
// they missed; answers wait in localStorage (the outbox) until their `ack` arrives and are
// re-sent with the same idempotency key after every reconnect, so the server
// records each exactly once.

const { encode, decode } = globalThis.MessagePack;

const REQUEST_TIMEOUT_MS = 10000;
const PING_EVERY_MS = 10000;
const PONG_WITHIN_MS = 4000;
const BACKOFF_MS = [300, 1000, 2000, 4000];
// waits between tries when the server cannot reach its room store (below)
const STORE_RETRY_MS = [1000, 2000, 4000, 8000, 10000];
// Close codes of the server (protocol/PROTOCOL.md, section 2).
const CLOSE_SESSION_ENDED = 4401; // logged out or deactivated: log in again
const CLOSE_RIGHTS_CHANGED = 4403; // rights changed: reconnect to get the new ones

export class LiveError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

export class Room {
  constructor(live, snapshot) {
    this.live = live;
    this.syncing = false;
    this.applySnapshot(snapshot);
  }

  applySnapshot(s) {
    this.id = s.room;
    this.seq = s.seq || 0;
    this.code = s.code;
    this.module = s.module || { title: '', tasks: [] };
    this.module.tasks = this.module.tasks || [];
    this.task = s.task || 0;
    this.host = s.host || {};
    this.hostOnline = this.hostOnline ?? true;
    this.learners = new Map();
    for (const l of s.learners || []) this.learners.set(l.id, { id: l.id, name: l.name, online: !!l.online });
    this.answers = new Map();
    for (const a of s.answers || []) this.answers.set(key(a.learner, a.task), { ...a, hasValue: 'value' in a });
    this.marks = new Map();
    for (const m of s.marks || []) this.marks.set(key(m.learner, m.task), { ...m, hidden: !('result' in m) });
    this.approvals = new Map();
    for (const o of s.outcomes || []) this.approvals.set(o.learner, { ...o, hidden: !('status' in o) });
    this.state = s.state || 'open';
  }

  // Applies one event in order. Returns false when it does not follow the
  // last seen seq (then the caller syncs).
  applyEvent(ev) {
    if (ev.seq <= this.seq) return true; // already seen (a sync replay)
    if (ev.seq !== this.seq + 1) return false;
    this.seq = ev.seq;
    const e = ev.e || {};
    switch (e.type) {
      case 'joined': // one person ({user, role, added?}) or several learners ({users, added?})
      case 'left': {
        const online = e.type === 'joined';
        for (const user of e.users || [e.user]) {
          if (e.role === 'host' || user === this.host.id) this.hostOnline = online;
          else if (this.learners.has(user)) this.learners.get(user).online = online;
          else if (online) this.learners.set(user, { id: user, name: null, online });
        }
        break;
      }
      case 'added':
        if (!this.learners.has(e.learner)) this.learners.set(e.learner, { id: e.learner, name: e.name || null, online: false });
        break;
      case 'removed':
        this.learners.delete(e.learner);
        break;
      case 'step':
        this.task = e.task;
        break;
      case 'answer':
        this.answers.set(key(e.learner, e.task), { learner: e.learner, task: e.task, by: e.by, value: e.value, hasValue: 'value' in e });
        break;
      case 'mark': // one learner, or a group (`learners`: the same result for each)
        for (const l of e.learners || [e.learner]) this.marks.set(key(l, e.task), { learner: l, task: e.task, result: e.result, note: e.note, evidence: e.evidence, hidden: !('result' in e) });
        break;
      case 'approved':
        this.approvals.set(e.learner, { learner: e.learner, status: e.status, completion: e.completion, hidden: !('status' in e) });
        break;
      case 'confirmed': // the learner confirmed a pending approval: it is a completion now
        this.approvals.set(e.learner, 'completion' in e
          ? { learner: e.learner, status: 'approved', completion: e.completion, confirmedAt: e.confirmed_at, decidedAt: e.decided_at, hidden: false }
          : { learner: e.learner, hidden: true });
        break;
      case 'closed':
        this.state = 'closed';
        break;
      default:
        break;
    }
    return true;
  }

  answer(learner, task) { return this.answers.get(key(learner, task)); }
  mark(learner, task) { return this.marks.get(key(learner, task)); }
}

const key = (learner, task) => `${learner}:${task}`;

export class Live extends EventTarget {
  constructor() {
    super();
    this.ws = null;
    this.rid = 0;
    this.pending = new Map(); // rid -> {resolve, reject, timer, msg}
    this.rooms = new Map(); // room id -> Room the page shows (rejoined on reconnect)
    this.status = 'offline'; // offline | connecting | online
    this.user = null;
    this.attempt = 0;
    this.stopped = true;
    this.readyWaiters = [];
    this.helloWs = null; // the socket whose hello was sent (while connecting)
    this.helloWaiters = []; // early requests waiting for a hello to be sent
    window.addEventListener('online', () => this.kick());
  }

  // ---- connection --------------------------------------------------------

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.rooms.clear();
    this.drop();
    this.setStatus('offline');
  }

  kick() { // reconnect now (the browser says it is online again)
    if (this.stopped || this.status === 'online') return;
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    this.open();
  }

  setStatus(s) {
    if (this.status === s) return;
    this.status = s;
    this.dispatchEvent(new CustomEvent('status', { detail: s }));
  }

  open() {
    this.drop();
    this.setStatus('connecting');
    const url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
    let ws;
    try {
      ws = new WebSocket(url, 'otj.v1');
    } catch {
      this.retry();
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => this.onOpen(ws);
    ws.onmessage = (m) => this.onFrame(ws, m.data);
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      if (ev.code === CLOSE_SESSION_ENDED) {
        this.drop();
        this.stopped = true;
        this.setStatus('offline');
        this.dispatchEvent(new CustomEvent('unauthorized', { detail: ev.reason }));
      } else if (ev.code === CLOSE_RIGHTS_CHANGED) {
        this.drop();
        this.attempt = 0;
        this.dispatchEvent(new CustomEvent('rights'));
        this.open();
      } else {
        this.lost();
      }
    };
    ws.onerror = () => {};
  }

  // Forget the current socket without waiting for its close handshake (a
  // dead network may never complete it).
  drop() {
    this.helloWs = null;
    this.wakeEarly();
    clearInterval(this.pingTimer);
    clearTimeout(this.storeTimer);
    this.storeTimer = null;
    clearTimeout(this.pongTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      try { ws.close(); } catch { /* already gone */ }
    }
    for (const [rid, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new LiveError('unavailable', 'The connection was lost before the server answered.'));
      this.pending.delete(rid);
    }
  }

  lost() {
    this.drop();
    if (this.stopped) return;
    this.setStatus('offline');
    this.retry();
  }

  retry() {
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt++;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), base + Math.random() * 300);
  }

  async onOpen(ws) {
    try {
      const hello = this.requestOn(ws, { t: 'hello', v: 1 });
      this.helloWs = ws;
      this.wakeEarly();
      const w = await hello;
      if (w.t !== 'welcome') throw new LiveError('unauthorized', 'The server did not accept this session.');
      this.user = w.user;
      this.attempt = 0;
      this.storeTries = 0;
      this.startPing(ws);
      this.setStatus('online');
      this.dispatchEvent(new CustomEvent('welcome', { detail: w.user }));
      if (this.watching) this.watchOnline().catch(() => {});
      for (const room of [...this.rooms.values()]) await this.rejoin(room);
      const waiters = this.readyWaiters;
      this.readyWaiters = [];
      waiters.forEach((f) => f());
    } catch (e) {
      if (e.code === 'unauthorized') {
        this.stopped = true;
        this.setStatus('offline');
        this.dispatchEvent(new CustomEvent('unauthorized'));
        return;
      }
      if (this.ws === ws) this.lost();
    }
  }

  startPing(ws) {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      if (this.ws !== ws) return;
      clearTimeout(this.pongTimer);
      this.pongTimer = setTimeout(() => { if (this.ws === ws) this.lost(); }, PONG_WITHIN_MS);
      this.requestOn(ws, { t: 'ping' }).then(() => clearTimeout(this.pongTimer), () => {});
    }, PING_EVERY_MS);
  }

  ready() {
    if (this.status === 'online') return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  // ---- frames -------------------------------------------------------------

  onFrame(ws, data) {
    if (this.ws !== ws) return;
    let msg;
    try {
      msg = decode(new Uint8Array(data));
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    // any frame proves the link is alive
    clearTimeout(this.pongTimer);
    if (msg.rid !== undefined && msg.rid !== null && this.pending.has(msg.rid) && msg.t !== 'ev') {
      const p = this.pending.get(msg.rid);
      this.pending.delete(msg.rid);
      clearTimeout(p.timer);
      if (msg.t === 'err') p.reject(new LiveError(msg.code, msg.msg || 'The server refused this.'));
      else p.resolve(msg);
      if (msg.t === 'ack') this.onAck(msg);
      return;
    }
    switch (msg.t) {
      case 'ev': this.onEvent(msg); break;
      case 'ack': this.onAck(msg); break;
      case 'snapshot': this.onSnapshot(msg); break;
      case 'dashboard': this.dispatchEvent(new CustomEvent('dashboard', { detail: msg })); break;
      case 'invite': this.dispatchEvent(new CustomEvent('invite', { detail: msg })); break;
      case 'online': this.dispatchEvent(new CustomEvent('online', { detail: msg })); break;
      case 'err':
        this.dispatchEvent(new CustomEvent('servererror', { detail: msg }));
        if (msg.code === 'unavailable') this.storeTrouble();
        break;
      default: break; // unknown types are ignored
    }
  }

  send(ws, msg) {
    ws.send(encode(msg, { ignoreUndefined: true }));
  }

  requestOn(ws, msg) {
    return new Promise((resolve, reject) => {
      if (!ws || ws.readyState !== WebSocket.OPEN) {
        reject(new LiveError('unavailable', 'Not connected.'));
        return;
      }
      const rid = ++this.rid;
      const timer = setTimeout(() => {
        this.pending.delete(rid);
        reject(new LiveError('timeout', 'The server did not answer in time.'));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(rid, { resolve, reject, timer, msg });
      this.send(ws, { ...msg, rid });
    });
  }

  // A request on the current connection, waiting for it when offline.
  async request(msg) {
    await this.ready();
    return this.requestOn(this.ws, msg);
  }

  // A request that need not wait for `welcome`: sent right behind this
  // socket's hello (the server reads a connection's messages in order), so a
  // phone that scanned a QR code has its room one round trip sooner. When
  // that socket goes before answering, or its hello is refused, it waits for
  // a connection as any request does.
  async requestEarly(msg) {
    if (this.status === 'connecting' && !this.helloWs) await new Promise((r) => this.helloWaiters.push(r));
    const ws = this.helloWs;
    if (this.status === 'connecting' && ws && ws === this.ws) {
      try {
        return await this.requestOn(ws, msg);
      } catch (e) {
        const waitForNext = e.code === 'unauthorized' || (e.code === 'unavailable' && this.ws !== ws);
        if (!waitForNext) throw e;
      }
    }
    return this.request(msg);
  }

  wakeEarly() {
    const waiters = this.helloWaiters;
    this.helloWaiters = [];
    waiters.forEach((f) => f());
  }

  // ---- who of my responsibles is online (the OTJ pop-up) ------------------

  // Follows them until unwatchOnline(): every answer and change arrives as an
  // `online` event ({responsibles: [{id, name, online}]}); followed again
  // after a reconnect.
  async watchOnline() {
    this.watching = true;
    const r = await this.request({ t: 'watch' });
    if (this.watching && r.t === 'online') this.dispatchEvent(new CustomEvent('online', { detail: r }));
  }

  unwatchOnline() {
    if (!this.watching) return;
    this.watching = false;
    if (this.status === 'online') this.request({ t: 'unwatch' }).catch(() => {});
  }

  // ---- rooms --------------------------------------------------------------

  async openRoom(module, learners) {
    const s = await this.request({ t: 'open', module, learners });
    return this.track(s);
  }

  async join(by) { // {code} or {room}
    const s = await this.requestEarly({ t: 'join', ...by });
    if (s.t !== 'snapshot') throw new LiveError('internal', 'The server did not send the room.');
    return this.track(s);
  }

  track(s) {
    let room = this.rooms.get(s.room);
    if (room) room.applySnapshot(s);
    else {
      room = new Room(this, s);
      this.rooms.set(room.id, room);
    }
    this.emitRoom(room);
    this.flushOutbox(room.id);
    return room;
  }

  untrack(roomId) { this.rooms.delete(roomId); }

  // One `sync` per room after a reconnect: the server joins this connection
  // to the room on the way and sends only the events it missed (or a
  // snapshot when it no longer keeps them), one round trip and no whole room
  // when a phone's Wi-Fi blinked.
  async rejoin(room) {
    room.syncing = true;
    try {
      const r = await this.requestOn(this.ws, { t: 'sync', room: room.id, since: room.seq });
      if (r.t === 'snapshot') room.applySnapshot(r);
      room.syncing = false;
      this.emitRoom(room);
      this.flushOutbox(room.id);
      this.flushDecisions(room.id);
    } catch (e) {
      room.syncing = false;
      if (e.code === 'not_found' || e.code === 'forbidden') {
        room.state = 'closed';
        this.emitRoom(room);
      } else if (e.code === 'unavailable') {
        this.storeTrouble();
      }
    }
  }

  // Brings the room up to date. Resolves with null, or the code of the
  // error (the next reconnect tries again, or storeRetry for `unavailable`).
  async sync(room) {
    if (room.syncing) return null;
    room.syncing = true;
    let err = null;
    try {
      const r = await this.requestOn(this.ws, { t: 'sync', room: room.id, since: room.seq });
      if (r.t === 'snapshot') room.applySnapshot(r);
    } catch (e) {
      err = e.code || 'unavailable';
    } finally {
      room.syncing = false;
    }
    this.emitRoom(room);
    if (err === 'unavailable') this.storeTrouble();
    return err;
  }

  // The server cannot reach its room store right now (`unavailable`: Redis
  // restarting or stalled) while this socket stays up. Nothing else would
  // bring the rooms up to date, or send the answers and decisions waiting
  // here again, before the next reconnect: so the page tries by itself,
  // waiting longer each time (with jitter, so that a room full of phones
  // does not come back at once), until the server answers.
  storeTrouble() {
    if (this.storeTimer || this.status !== 'online') return;
    this.storeTries = this.storeTries || 0;
    const base = STORE_RETRY_MS[Math.min(this.storeTries++, STORE_RETRY_MS.length - 1)];
    this.storeTimer = setTimeout(() => this.storeRetry(), base + Math.random() * 500);
  }

  async storeRetry() {
    this.storeTimer = null;
    const ws = this.ws;
    if (this.status !== 'online') return;
    const errs = await Promise.all([...this.rooms.values()].map((room) => this.sync(room)));
    if (this.ws !== ws) return; // reconnected meanwhile: the rejoin did it all
    if (errs.some((e) => e === 'unavailable' || e === 'timeout')) {
      this.storeTrouble();
      return;
    }
    this.storeTries = 0;
    for (const room of this.rooms.values()) {
      this.flushOutbox(room.id);
      this.flushDecisions(room.id);
    }
  }

  onEvent(msg) {
    const room = this.rooms.get(msg.room);
    this.dispatchEvent(new CustomEvent('ev', { detail: msg }));
    if (!room) return;
    if (!room.applyEvent(msg)) {
      if (!room.syncing) this.sync(room);
      return;
    }
    if (!room.syncing) this.emitRoom(room, msg);
    else this.dispatchEvent(new CustomEvent('roomev', { detail: { room, ev: msg } }));
  }

  onSnapshot(msg) {
    const room = this.rooms.get(msg.room);
    if (room) {
      room.applySnapshot(msg);
      this.emitRoom(room);
    } else {
      this.dispatchEvent(new CustomEvent('invite', { detail: msg }));
    }
  }

  emitRoom(room, ev) {
    this.dispatchEvent(new CustomEvent('room', { detail: { room, ev } }));
    if (ev) this.dispatchEvent(new CustomEvent('roomev', { detail: { room, ev } }));
  }

  // ---- answers and the outbox --------------------------------------------

  outboxKey() { return `otj.outbox.${this.user ? this.user.id : 'anon'}`; }

  outbox() {
    try {
      return JSON.parse(localStorage.getItem(this.outboxKey()) || '[]');
    } catch {
      return [];
    }
  }

  saveOutbox(items) {
    try {
      localStorage.setItem(this.outboxKey(), JSON.stringify(items));
    } catch { /* storage full or blocked: the answer still goes out now */ }
    this.dispatchEvent(new CustomEvent('outbox', { detail: items }));
  }

  unacked(roomId) { return this.outbox().filter((a) => a.room === roomId); }

  answer(roomId, task, value, learner) {
    const k = `${(this.user && this.user.id) || 'u'}-${task}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    const item = { room: roomId, task, value, key: k };
    if (learner !== undefined) item.learner = learner;
    this.saveOutbox([...this.outbox().filter((a) => !(a.room === roomId && a.task === task && a.learner === item.learner)), item]);
    this.sendAnswer(item);
    return k;
  }

  sendAnswer(item) {
    if (this.status !== 'online' || !this.rooms.has(item.room)) return; // re-sent after rejoin
    const msg = { t: 'answer', room: item.room, task: item.task, value: item.value, key: item.key };
    if (item.learner !== undefined) msg.learner = item.learner;
    this.requestOn(this.ws, msg).catch((e) => {
      if (['conflict', 'forbidden', 'not_found', 'bad_request', 'too_large'].includes(e.code)) {
        this.saveOutbox(this.outbox().filter((a) => a.key !== item.key));
        this.dispatchEvent(new CustomEvent('answerfailed', { detail: { item, error: e } }));
      }
      // otherwise (lost, timeout, unavailable, rate limited) it stays and is re-sent
      if (e.code === 'unavailable') this.storeTrouble();
    });
  }

  onAck(msg) {
    const items = this.outbox();
    const rest = items.filter((a) => a.key !== msg.key);
    if (rest.length !== items.length) this.saveOutbox(rest);
    this.dispatchEvent(new CustomEvent('ack', { detail: msg }));
  }

  flushOutbox(roomId) {
    for (const item of this.outbox()) if (item.room === roomId) this.sendAnswer(item);
  }

  // ---- decisions: pending until the server's durable acknowledgement -------
  // An approve is kept (localStorage) from the click until its `approved`
  // reply, which the server sends only once the decisions are on disk. A
  // connection lost in between re-sends it after the rejoin: approving the
  // same learner again answers with the same completion (R10), so a decision
  // is never lost and never doubled.

  decisionsKey() { return `otj.decisions.${this.user ? this.user.id : 'anon'}`; }

  decisionsOut() {
    try {
      return JSON.parse(localStorage.getItem(this.decisionsKey()) || '[]');
    } catch {
      return [];
    }
  }

  saveDecisions(items) {
    try {
      localStorage.setItem(this.decisionsKey(), JSON.stringify(items));
    } catch { /* storage full or blocked: kept in memory below */ }
    this.decisionsMem = items;
    this.dispatchEvent(new CustomEvent('decisions', { detail: items }));
  }

  // learner id -> approved (bool) for every decision of the room still
  // waiting for its acknowledgement
  savingDecisions(roomId) {
    const m = new Map();
    for (const it of this.decisionsOut()) if (it.room === roomId) for (const d of it.decisions) m.set(d.learner, d.approved);
    return m;
  }

  // Resolves with the `approved` reply (after reconnects if need be);
  // rejects only when the server refused the request itself.
  decide(roomId, decisions) {
    const item = { id: `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`, room: roomId, decisions };
    this.saveDecisions([...this.decisionsOut(), item]);
    return this.sendDecision(item);
  }

  sendDecision(item) {
    this.decisionWaits = this.decisionWaits || new Map();
    let w = this.decisionWaits.get(item.id);
    if (!w) {
      w = {};
      w.promise = new Promise((resolve, reject) => { w.resolve = resolve; w.reject = reject; });
      w.promise.catch(() => {});
      this.decisionWaits.set(item.id, w);
    }
    if (this.status !== 'online' || !this.rooms.has(item.room) || w.inflight) return w.promise;
    w.inflight = true;
    const done = () => {
      w.inflight = false;
      this.decisionWaits.delete(item.id);
      this.saveDecisions(this.decisionsOut().filter((d) => d.id !== item.id));
    };
    this.requestOn(this.ws, { t: 'approve', room: item.room, decisions: item.decisions }).then((reply) => {
      done();
      w.resolve(reply);
    }, (e) => {
      if (['forbidden', 'not_found', 'bad_request', 'conflict', 'too_large'].includes(e.code)) {
        done();
        w.reject(e);
      } else {
        w.inflight = false; // lost, timeout, unavailable: re-sent after the rejoin
        if (e.code === 'unavailable') this.storeTrouble();
        else if (this.status === 'online') setTimeout(() => this.sendDecision(item), 1000);
      }
    });
    return w.promise;
  }

  flushDecisions(roomId) {
    for (const item of this.decisionsOut()) if (item.room === roomId) this.sendDecision(item);
  }
}

export const live = new Live();
