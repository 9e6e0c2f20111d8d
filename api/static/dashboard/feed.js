// WS /api/v1/live: authenticates with its first message (a browser WebSocket cannot
// send an Authorization header), reconnects with backoff, fans events out to views.
import { session } from "./api.js";

export class LiveFeed extends EventTarget {
  constructor() {
    super();
    this.ws = null;
    this.backoff = 500;
    this.stopped = false;
    this.connected = false;
    this.received = 0;
  }

  start() {
    this.stopped = false;
    this.#connect();
  }

  stop() {
    this.stopped = true;
    if (this.ws) this.ws.close(1000, "logout");
  }

  #connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/api/v1/live`);
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token: session.key }));
    ws.onmessage = (message) => {
      const event = JSON.parse(message.data);
      this.received += 1;
      if (event.type === "hello") {
        this.connected = true;
        this.backoff = 500;
        this.dispatchEvent(new CustomEvent("status", { detail: { connected: true, hello: event } }));
      } else if (event.type === "error") {
        this.dispatchEvent(new CustomEvent("status", { detail: { connected: false, error: event.detail } }));
      } else {
        this.dispatchEvent(new CustomEvent("event", { detail: event }));
      }
    };
    ws.onclose = (close) => {
      this.connected = false;
      this.dispatchEvent(new CustomEvent("status", { detail: { connected: false, code: close.code } }));
      if (this.stopped || close.code === 1008) return; // logged out, or a bad key
      setTimeout(() => this.#connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 10000);
    };
  }
}
