// The pairs view: every tracked pair with its feed state and counters (GET /api/pairs), the
// daemon's health (GET /health), and per pair its last snapshot and the last hour's gaps and
// coverage; track and untrack.
//
// Many pairs: the list is one request every REFRESH_MS; what costs a request per pair
// (latest snapshot, summary of the hour) is asked only for rows on screen (an
// IntersectionObserver), through a queue of at most QUEUE_LIMIT requests at once, the summary
// at most once per SUMMARY_MS. At most MAX_ROWS rows are drawn; the filter narrows them.

import { ApiError, pairPath } from "./api.js";
import { $, el, errorText, fmtAge, fmtInt, fmtPct, say, show } from "./dom.js";

const REFRESH_MS = 5000;
const SUMMARY_MS = 60000;
const QUEUE_LIMIT = 4;
const MAX_ROWS = 500;
const HOUR_MS = 3600 * 1000;
/** a pair's data is "live" while its newest snapshot is younger than this many intervals */
const LIVE_INTERVALS = 3;

/** Runs async jobs, at most `limit` at once, one per key at a time. */
class Queue {
  constructor(limit) {
    this.limit = limit;
    this.running = 0;
    this.waiting = [];
    this.keys = new Set();
  }

  add(key, job) {
    if (this.keys.has(key)) return;
    this.keys.add(key);
    this.waiting.push([key, job]);
    this.pump();
  }

  clear() {
    for (const [key] of this.waiting) this.keys.delete(key);
    this.waiting = [];
  }

  pump() {
    while (this.running < this.limit && this.waiting.length) {
      const [key, job] = this.waiting.shift();
      this.running += 1;
      job()
        .catch(() => {}) // each job shows its own failure
        .finally(() => {
          this.running -= 1;
          this.keys.delete(key);
          this.pump();
        });
    }
  }
}

export class PairsView {
  constructor(api, monitor) {
    this.api = api;
    this.monitor = monitor;
    this.section = $("#view-pairs");
    this.tbody = $("#pairs-table tbody");
    this.error = $("#pairs-error");
    this.filter = $("#pair-filter");
    this.trackForm = $("#track-form");
    this.rows = new Map(); // pair -> row record
    this.entries = [];
    this.visible = new Set();
    this.queue = new Queue(QUEUE_LIMIT);
    this.timer = null;
    this.ticker = null;
    this.active = false;
    this.canManage = true;
    this.observer = new IntersectionObserver((items) => this.onVisibility(items));
    this.filter.addEventListener("input", () => this.render());
    this.trackForm.addEventListener("submit", (e) => this.track(e));
    monitor.onRecovered(() => this.active && this.refresh());
  }

  /** me: GET /api/users/me; an account with a role other than admin cannot manage pairs */
  show(me) {
    this.canManage = !(me && me.role && me.role !== "admin");
    for (const control of this.trackForm.elements) control.disabled = !this.canManage;
    this.trackForm.title = this.canManage ? "" : "only admins track and untrack pairs";
    show(this.section, true);
    this.active = true;
    this.refresh();
    this.ticker = setInterval(() => this.tick(), 1000);
  }

  hide() {
    this.active = false;
    show(this.section, false);
    clearTimeout(this.timer);
    clearInterval(this.ticker);
    this.queue.clear();
  }

  /** The list and health now (one request in flight at a time), then every REFRESH_MS. */
  refresh() {
    if (!this.inflight) {
      this.inflight = this.load().finally(() => {
        this.inflight = null;
        clearTimeout(this.timer);
        if (this.active) this.timer = setTimeout(() => this.refresh(), REFRESH_MS);
      });
    }
    return this.inflight;
  }

  async load() {
    try {
      const [list, health] = await Promise.all([
        this.api.json("GET", "api/pairs"),
        this.api.json("GET", "health", { auth: false }).catch(() => null),
      ]);
      if (!this.active) return;
      this.entries = list.pairs || [];
      if (this.loadFailed) say(this.error, "");
      this.loadFailed = false;
      this.renderHealth(health);
      this.render();
      this.fetchVisible();
    } catch (err) {
      // unreachable: the header says so, and the list comes back on recovery
      if (this.active && err.status !== 0) {
        say(this.error, errorText(err));
        this.loadFailed = true;
      }
    }
  }

  render() {
    const words = this.filter.value.trim().toUpperCase();
    const matching = this.entries
      .filter((e) => !words || String(e.pair).toUpperCase().includes(words))
      .sort((a, b) => String(a.pair).localeCompare(String(b.pair)));
    const shown = matching.slice(0, MAX_ROWS);
    const keep = new Set(shown.map((e) => e.pair));
    for (const [pair, row] of this.rows) {
      if (!keep.has(pair)) {
        this.observer.unobserve(row.tr);
        row.tr.remove();
        this.rows.delete(pair);
        this.visible.delete(pair);
      }
    }
    let previous = null;
    for (const entry of shown) {
      let row = this.rows.get(entry.pair);
      if (!row) {
        row = this.makeRow(entry.pair);
        this.rows.set(entry.pair, row);
        this.observer.observe(row.tr);
      }
      this.fillRow(row, entry);
      const place = previous ? previous.nextSibling : this.tbody.firstChild;
      if (place !== row.tr) this.tbody.insertBefore(row.tr, place);
      previous = row.tr;
    }
    show($("#pairs-empty"), this.entries.length === 0);
    const more = $("#pairs-more");
    say(more, matching.length > shown.length
      ? `showing ${shown.length} of ${matching.length} pairs: filter to narrow` : "");
  }

  makeRow(pair) {
    const cells = {};
    const td = (name, cls) => (cells[name] = el("td", { class: cls }));
    const link = el("a", { href: `#/pair/${pairPath(pair)}` }, pair);
    const untrack = el("button", { type: "button", class: "small danger" }, "untrack");
    untrack.addEventListener("click", () => this.untrack(pair, untrack));
    const tr = el("tr", { dataset: { pair } },
      el("td", { class: "pair" }, link), td("state"), td("data"), td("age"),
      td("mismatches", "num"), td("resyncs", "num"), td("reconnects", "num"),
      td("gaps", "num"), td("coverage", "num"), td("stored", "num"),
      el("td", {}, untrack));
    return {
      pair, tr, cells, untrack, latestTs: null, fetchedAt: 0, ageAtFetch: null, noData: false,
      interval: null, summaryAt: 0,
    };
  }

  fillRow(row, entry) {
    const c = row.cells;
    const state = typeof entry.state === "string" ? entry.state : "unknown";
    c.state.replaceChildren(el("span", { class: "state", dataset: { state } }, state));
    if (entry.error) c.state.title = String(entry.error);
    c.mismatches.textContent = fmtInt(entry.mismatches);
    c.resyncs.textContent = fmtInt(entry.resyncs);
    c.reconnects.textContent = fmtInt(entry.reconnects);
    c.stored.textContent = fmtInt(entry.snapshots);
    row.untrack.disabled = !this.canManage;
    this.fillAge(row);
  }

  fillAge(row) {
    const c = row.cells;
    if (row.latestTs === null) {
      c.age.textContent = "—";
      c.data.replaceChildren(row.noData ? el("span", { class: "muted" }, "no data") : "");
      return;
    }
    // live: the newest snapshot was fresh when asked, and the last answer is recent (the
    // newest is asked again each REFRESH_MS only, while its age ticks on screen)
    const now = Date.now();
    const fresh = LIVE_INTERVALS * (row.interval || 1000) + 1000;
    const live = row.ageAtFetch <= fresh && now - row.fetchedAt <= REFRESH_MS + fresh;
    c.age.textContent = fmtAge(now - row.latestTs);
    const word = live ? "live" : "stale";
    c.data.replaceChildren(el("span", { class: "state", dataset: { state: word } }, word));
  }

  tick() {
    for (const row of this.rows.values()) this.fillAge(row);
  }

  onVisibility(items) {
    for (const item of items) {
      const pair = item.target.dataset.pair;
      if (item.isIntersecting) this.visible.add(pair);
      else this.visible.delete(pair);
    }
    this.fetchVisible();
  }

  fetchVisible() {
    for (const pair of this.visible) {
      const row = this.rows.get(pair);
      if (!row) continue;
      this.queue.add(`latest ${pair}`, () => this.fetchLatest(row));
      if (Date.now() - row.summaryAt >= SUMMARY_MS) {
        this.queue.add(`summary ${pair}`, () => this.fetchSummary(row));
      }
    }
  }

  async fetchLatest(row) {
    if (!this.active || !this.rows.has(row.pair)) return;
    try {
      const snap = await this.api.json("GET", `api/analysis/latest/${pairPath(row.pair)}`);
      row.latestTs = Number(snap.ts);
      row.fetchedAt = Date.now();
      row.ageAtFetch = row.fetchedAt - row.latestTs;
      row.noData = false;
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) throw err;
      row.latestTs = null;
      row.noData = true;
    }
    this.fillAge(row);
  }

  async fetchSummary(row) {
    if (!this.active || !this.rows.has(row.pair)) return;
    row.summaryAt = Date.now();
    const since = Date.now() - HOUR_MS;
    try {
      const s = await this.api.json(
        "GET", `api/analysis/summary/${pairPath(row.pair)}?since=${since}`);
      row.interval = s.interval_ms || row.interval;
      row.cells.gaps.textContent = fmtInt(s.gaps);
      row.cells.coverage.textContent = fmtPct(s.coverage);
    } catch (err) {
      row.summaryAt = 0; // ask again on the next round
      if (!(err instanceof ApiError) || err.status !== 404) throw err;
      row.cells.gaps.textContent = "—";
      row.cells.coverage.textContent = "—";
    }
  }

  renderHealth(health) {
    const box = $("#health");
    if (!health) {
      box.replaceChildren();
      return;
    }
    const parts = [
      el("span", { class: "state", dataset: { state: health.status === "ok" ? "live" : "stale" } },
        `daemon ${health.status}`),
    ];
    const feed = health.feed && health.feed.connection;
    if (feed) {
      parts.push(el("span", {}, `feed ${feed.connected ? "connected" : "not connected"}` +
        (feed.system ? ` (exchange ${feed.system})` : "")));
    }
    for (const name of ["bus", "store", "users"]) {
      const part = health[name];
      if (part) parts.push(el("span", {}, `${name} ${part.backend}: ${part.healthy ? "ok" : "down"}`));
    }
    if (health.version) parts.push(el("span", { class: "muted" }, `v${health.version}`));
    const problems = health.problems || [];
    if (problems.length) {
      const more = problems.length > 3 ? ` and ${problems.length - 3} more` : "";
      parts.push(el("span", { class: "problems" }, problems.slice(0, 3).join("; ") + more));
    }
    box.replaceChildren(...parts);
  }

  async track(event) {
    event.preventDefault();
    const input = this.trackForm.elements.pair;
    const pair = input.value.trim();
    if (!pair) return;
    say(this.error, "");
    try {
      const answer = await this.api.json("POST", "api/pairs", { body: { pair } });
      input.value = "";
      say(this.error, "");
      this.flash(`tracking ${answer.pair} (${answer.state})`);
      await this.refresh();
    } catch (err) {
      say(this.error, errorText(err));
    }
  }

  async untrack(pair, button) {
    if (!button.classList.contains("armed")) {
      button.classList.add("armed");
      button.textContent = "confirm untrack";
      setTimeout(() => {
        button.classList.remove("armed");
        button.textContent = "untrack";
      }, 5000);
      return;
    }
    button.disabled = true;
    say(this.error, "");
    try {
      await this.api.json("DELETE", `api/pairs/${pairPath(pair)}`);
      this.flash(`stopped tracking ${pair}`);
      await this.refresh();
    } catch (err) {
      say(this.error, errorText(err));
      button.disabled = false;
    }
  }

  flash(message) {
    const notice = $("#notice");
    say(notice, message);
    clearTimeout(this.flashTimer);
    this.flashTimer = setTimeout(() => say(notice, ""), 4000);
  }
}
