// One pair's live stream: WS /api/stream/{pair}, reconnected with backoff until stopped.
//
// The token travels as a WebSocket subprotocol (`kms.bearer`, then the token), never in the
// URL: a browser cannot set an Authorization header on a WebSocket, and a URL ends up in
// logs and histories. The gateway accepts with `kms.bearer`.

import { pairPath } from "./api.js";
import { backoff } from "./backoff.js";

export const SUBPROTOCOL = "kms.bearer";
/** close codes of the gateway that retrying cannot fix */
const BAD_TOKEN = 4401;
const TOKEN_REVOKED = 4403; // logged out, or the account disabled or deleted meanwhile
const BAD_PAIR = 4404;

export class PairStream {
  /**
   * handlers: onSnapshot(data), onStatus(msg), onOpen(reopened), onRetrying(),
   * onRefused(code, reason)
   */
  constructor(pair, token, handlers) {
    this.url = streamUrl(pair);
    this.token = token;
    this.handlers = handlers;
    this.ws = null;
    this.timer = null;
    this.stopped = false;
    this.opened = 0;
    this.delays = backoff(500, 5000);
  }

  start() {
    this.connect();
    return this;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = ws.onmessage = ws.onerror = ws.onopen = null;
      ws.close(1000, "page left");
    }
  }

  /** Reconnect now (the daemon answers again) instead of waiting out the backoff. */
  kick() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.timer);
    this.connect();
  }

  connect() {
    if (this.stopped) return;
    this.timer = null;
    const ws = new WebSocket(this.url, [SUBPROTOCOL, this.token]);
    this.ws = ws;
    ws.onopen = () => {
      this.delays = backoff(500, 5000);
      this.opened += 1;
      this.handlers.onOpen(this.opened > 1);
    };
    ws.onmessage = (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return; // not ours to show
      }
      if (msg && msg.type === "snapshot" && msg.data) this.handlers.onSnapshot(msg.data);
      else if (msg && msg.type === "status") this.handlers.onStatus(msg);
    };
    // a failed connection also fires close (with 1006): everything is decided there
    ws.onerror = () => {};
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      if (event.code === BAD_TOKEN || event.code === TOKEN_REVOKED || event.code === BAD_PAIR) {
        this.stopped = true;
        this.handlers.onRefused(event.code, event.reason);
        return;
      }
      this.handlers.onRetrying();
      this.timer = setTimeout(() => this.connect(), this.delays.next().value);
    };
  }
}

function streamUrl(pair) {
  const url = new URL(`api/stream/${pairPath(pair)}`, document.baseURI);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}
