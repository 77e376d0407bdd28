// The connection to the daemon as the header shows it: connecting, live, reconnecting, or
// daemon down; and the recovery without a reload when the daemon comes back.
//
// Two things report here: every HTTP request (answered or not), and the live stream of the
// pair on screen (open, or retrying). When either fails, a probe asks GET /health (no token
// needed) with capped backoff until the daemon answers; then everyone listening to
// onRecovered re-fetches and the stream reconnects at once instead of waiting out its backoff.

import { backoff } from "./backoff.js";

/** failing this long (ms) without a single answer is "daemon down", not a blip */
export const DOWN_AFTER_MS = 10000;
const PROBE_TIMEOUT_MS = 3000;

const LABELS = {
  connecting: "connecting",
  live: "live",
  reconnecting: "reconnecting",
  down: "daemon down",
};

export class ConnectionMonitor {
  constructor(badge) {
    this.badge = badge;
    this.everAnswered = false;
    this.failingSince = null;
    this.streamRetrying = false;
    this.probing = false;
    this.listeners = new Set();
    this.state = null;
    this.render();
  }

  /** Call fn() each time the daemon answers again after a failure; returns an unsubscribe. */
  onRecovered(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  answered() {
    const recovered = this.failingSince !== null;
    this.everAnswered = true;
    this.failingSince = null;
    this.render();
    if (recovered) for (const fn of [...this.listeners]) fn();
  }

  failed() {
    if (this.failingSince === null) this.failingSince = Date.now();
    this.render();
    this.probe();
  }

  /** The pair stream's state: retrying (closed, reconnecting) or not (open, or none). */
  streamState(retrying) {
    this.streamRetrying = retrying;
    this.render();
    if (retrying) this.probe();
  }

  compute() {
    if (this.failingSince !== null) {
      const long = Date.now() - this.failingSince >= DOWN_AFTER_MS;
      return long || !this.everAnswered ? "down" : "reconnecting";
    }
    if (this.streamRetrying) return "reconnecting";
    return this.everAnswered ? "live" : "connecting";
  }

  render() {
    const state = this.compute();
    if (state === this.state) return;
    this.state = state;
    this.badge.dataset.state = state;
    this.badge.textContent = LABELS[state];
  }

  /** GET /health until it answers (one probe loop at a time). */
  async probe() {
    if (this.probing) return;
    this.probing = true;
    const delays = backoff(500, 5000);
    try {
      for (;;) {
        if (await this.healthAnswers()) {
          this.answered();
          return;
        }
        if (this.failingSince === null) this.failingSince = Date.now();
        this.render();
        await sleep(delays.next().value);
        this.render();
      }
    } finally {
      this.probing = false;
    }
  }

  async healthAnswers() {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), PROBE_TIMEOUT_MS);
    try {
      const response = await fetch("health", { cache: "no-store", signal: abort.signal });
      return response.status < 500;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
