// LiveConnection: one WebSocket to /api/ws shared by a page's subscriptions, kept alive forever.
//
//   import { LiveConnection } from "/static/common/live.js";
//   const live = new LiveConnection({ onOnline, onOffline });
//   const sub = live.subscribe({ view: "lobby", office: "honcho" }, {
//     snapshot(data, msg) {}, event(event, msg) {}, view(data, msg) {}, estimates(data, msg) {},
//     error(error) {},   // {code, message} from a failed subscribe; "not_found"/"unauthorized" are not retried
//   });
//   sub.close();
//
// After every (re)connect each subscription is made again and starts with a fresh snapshot (or
// view). A missing event seq (a gap) after a snapshot resubscribes at once; a view sent whole (no
// snapshot) passes its events on as they come. The socket reconnects with jittered
// exponential backoff (0.5 s doubling up to 10 s) and is pinged, so a silently dead network is
// noticed within about a minute even when the browser does not report it.

const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 10_000;
const PING_EVERY_MS = 25_000;
const PONG_WITHIN_MS = 10_000;
const OFFLINE_GRACE_MS = 1_500;          // a quick reconnect does not flash the offline sign
const FINAL_ERRORS = new Set(["not_found", "unauthorized", "forbidden", "invalid_request"]);

export function defaultWsUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/api/ws`;
}

export class LiveConnection {
  constructor({ url = defaultWsUrl(), onOnline = () => {}, onOffline = () => {} } = {}) {
    this.url = url;
    this.onOnline = onOnline;
    this.onOffline = onOffline;
    this.ws = null;
    this.nextId = 1;
    this.subs = new Set();         // Subscription objects
    this.byId = new Map();         // message id -> Subscription (current subscribe id)
    this.attempt = 0;
    this.online = null;            // unknown: the first connection failing is going offline too
    this.closed = false;
    this.reconnectTimer = null;
    this.offlineTimer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    window.addEventListener("online", () => this.reconnectNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.reconnectNow();
    });
    this.connect();
  }

  /** Follow a view; returns a subscription with close(). */
  subscribe(params, handlers) {
    const sub = new Subscription(this, params, handlers);
    this.subs.add(sub);
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.sendSubscribe(sub);
    return sub;
  }

  /** Stop everything: no more reconnects. */
  close() {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.stopPing();
    if (this.ws) this.ws.close();
  }

  connect() {
    if (this.closed) return;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.setOnline(true);
      this.byId.clear();
      for (const sub of this.subs) this.sendSubscribe(sub);
      this.startPing();
    };
    ws.onmessage = (e) => {
      let msg;
      try { msg = JSON.parse(e.data); } catch { return; }
      this.dispatch(msg);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.stopPing();
      this.setOnline(false);
      this.scheduleReconnect();
    };
    ws.onerror = () => {};  // onclose follows
  }

  reconnectNow() {
    if (this.closed || this.ws) return;
    clearTimeout(this.reconnectTimer);
    this.attempt = 0;
    this.connect();
  }

  scheduleReconnect() {
    if (this.closed) return;
    clearTimeout(this.reconnectTimer);
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    const delay = ceiling / 2 + Math.random() * ceiling / 2;   // jitter: many displays don't reconnect in step
    this.attempt += 1;
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  setOnline(online) {
    if (online === this.online) return;
    this.online = online;
    clearTimeout(this.offlineTimer);
    if (online) {
      this.onOnline();
    } else {
      this.offlineTimer = setTimeout(() => { if (!this.online) this.onOffline(); }, OFFLINE_GRACE_MS);
    }
  }

  startPing() {
    this.stopPing();
    this.pingTimer = setInterval(() => {
      if (!this.send({ type: "ping" })) return;
      clearTimeout(this.pongTimer);
      this.pongTimer = setTimeout(() => { if (this.ws) this.ws.close(); }, PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  stopPing() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
  }

  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ id, ...message }));
    return id;
  }

  sendSubscribe(sub) {
    const { view, office, counter, token } = sub.params;
    const message = { type: "subscribe", view };
    if (office !== undefined) message.office = office;
    if (counter !== undefined) message.counter = String(counter);
    if (token !== undefined) message.token = token;
    const id = this.send(message);
    if (id === false) return;
    if (sub.id !== null) this.byId.delete(sub.id);
    sub.id = id;
    sub.seq = null;
    this.byId.set(id, sub);
  }

  resubscribe(sub) {
    if (sub.id !== null) {
      this.send({ type: "unsubscribe", subscription: sub.id });
      this.byId.delete(sub.id);
      sub.id = null;
    }
    this.sendSubscribe(sub);
  }

  dispatch(msg) {
    if (msg.type === "pong") {
      clearTimeout(this.pongTimer);
      return;
    }
    const sub = this.byId.get(msg.id);
    if (!sub) return;  // an old subscription's late message
    switch (msg.type) {
      case "result":
        if (msg.success) {
          this.attempt = 0;
        } else {
          this.byId.delete(msg.id);
          sub.id = null;
          sub.call("error", msg.error || { code: "unavailable", message: "" });
          if (!FINAL_ERRORS.has(msg.error && msg.error.code)) {
            setTimeout(() => { if (sub.active && sub.id === null) this.sendSubscribe(sub); }, BACKOFF_MAX_MS);
          }
        }
        break;
      case "snapshot":
        sub.seq = msg.seq;
        sub.sequenced = true;
        sub.call("snapshot", msg.data, msg);
        break;
      case "event":
        // A view sent whole (the back office's, over several offices' sequences) carries its events
        // as news only: no snapshot to continue, so no gap to mend.
        if (!sub.sequenced) { sub.call("event", msg.event, msg); break; }
        if (sub.seq !== null && msg.seq <= sub.seq) break;        // already seen
        if (sub.seq === null || msg.seq !== sub.seq + 1) {         // a gap: start again from a snapshot
          this.resubscribe(sub);
          break;
        }
        sub.seq = msg.seq;
        sub.call("event", msg.event, msg);
        break;
      case "view":
        sub.call("view", msg.data, msg);
        break;
      case "estimates":
        sub.call("estimates", msg.data, msg);
        break;
      default:
        sub.call(msg.type, msg.data, msg);
    }
  }
}

class Subscription {
  constructor(connection, params, handlers) {
    this.connection = connection;
    this.params = params;
    this.handlers = handlers || {};
    this.id = null;
    this.seq = null;
    this.sequenced = false;        // true once a snapshot came: events then follow it in seq order
    this.active = true;
  }

  call(name, ...args) {
    const handler = this.active && this.handlers[name];
    if (!handler) return;
    try {
      handler(...args);
    } catch (e) {
      console.error(`live: ${name} handler failed`, e);
    }
  }

  /** Stop following this view. */
  close() {
    this.active = false;
    this.connection.subs.delete(this);
    if (this.id !== null) {
      this.connection.send({ type: "unsubscribe", subscription: this.id });
      this.connection.byId.delete(this.id);
      this.id = null;
    }
  }
}

/** Show or hide the page's #offline-sign (from base.html): pass as onOnline/onOffline. */
export function offlineSign(element = document.getElementById("offline-sign")) {
  return {
    onOnline: () => { if (element) element.hidden = true; },
    onOffline: () => { if (element) element.hidden = false; },
  };
}
