// The pair view: the live ladder and depth chart from WS /api/stream/{pair}, and the history
// charts from GET /api/analysis/history/{pair} extended live from the same stream.
//
// After the stream comes back (a daemon restart, a network blip) the range is fetched again,
// so what was published while it was away is drawn from history, breaks included.

import { ApiError, pairPath } from "./api.js";
import { DepthChart, HistoryCharts } from "./charts.js";
import { $, el, errorText, fmtInt, say, show } from "./dom.js";
import { depthColumns, Series } from "./series.js";
import { PairStream } from "./stream.js";

export const RANGES = { "15m": 15 * 60e3, "1h": 3600e3, "6h": 6 * 3600e3, all: null };

export class PairView {
  constructor(api, monitor) {
    this.api = api;
    this.monitor = monitor;
    this.section = $("#view-pair");
    this.ladder = $("#ladder");
    this.chartsBox = $("#charts");
    this.info = $("#history-info");
    this.error = $("#pair-error");
    this.range = "1h";
    this.series = new Series();
    this.pair = null;
    this.stream = null;
    this.charts = null;
    this.depth = null;
    this.loading = null;
    this.pending = [];
    this.drawQueued = false;
    this.updates = 0;
    for (const button of $("#range").querySelectorAll("button")) {
      button.addEventListener("click", () => this.setRange(button.dataset.range));
    }
    $("#csv").addEventListener("click", () => this.downloadCsv());
    monitor.onRecovered(() => this.stream && this.stream.kick());
  }

  show(pair) {
    this.hide();
    this.pair = pair;
    show(this.section, true);
    $("#pair-name").textContent = pair;
    this.setState("connecting");
    say(this.error, "");
    this.historyFailed = false;
    $("#pair-metrics").textContent = "";
    this.ladder.dataset.updates = String((this.updates = 0));
    this.ladder.tBodies[0].replaceChildren(
      el("tr", {}, el("td", { colspan: 4, class: "muted" }, "waiting for the first snapshot…")));
    this.charts = new HistoryCharts($("#mid-chart"), $("#spread-chart"), $("#imbalance-chart"));
    this.depth = new DepthChart($("#depth-chart"));
    this.series.clear();
    this.drawHistory();
    this.loadState();
    this.loadHistory();
    this.stream = new PairStream(pair, this.api.token, {
      onOpen: (reopened) => {
        this.monitor.streamState(false);
        if (reopened) {
          this.loadState();
          this.loadHistory();
        }
      },
      onRetrying: () => {
        this.monitor.streamState(true);
        this.setState("unknown", "no word from the daemon: reconnecting");
      },
      onSnapshot: (data) => this.onSnapshot(data),
      onStatus: (msg) => this.setState(msg.state, msg.reason),
      onRefused: (code, reason) => this.onRefused(code, reason),
    }).start();
  }

  hide() {
    if (this.stream) this.stream.stop();
    this.stream = null;
    this.monitor.streamState(false);
    for (const chart of [this.charts, this.depth]) if (chart) chart.destroy();
    this.charts = this.depth = null;
    this.pair = null;
    show(this.section, false);
  }

  setState(state, reason) {
    const badge = $("#pair-state");
    badge.dataset.state = state;
    badge.textContent = state;
    badge.title = reason || "";
  }

  async loadState() {
    const pair = this.pair;
    try {
      const list = await this.api.json("GET", "api/pairs");
      if (pair !== this.pair) return;
      const entry = (list.pairs || []).find((p) => p.pair === pair);
      if (entry) this.setState(String(entry.state), entry.error);
      else this.setState("untracked");
    } catch {
      // the stream says the rest
    }
  }

  onRefused(code, reason) {
    if (code === 4401) this.api.signOut("your session ended: sign in again");
    else if (code === 4403) this.api.signOut("your session was revoked: sign in again");
    else say(this.error, reason || `the daemon refused the stream (${code})`);
  }

  onSnapshot(data) {
    if (data.pair !== this.pair) return;
    this.drawLadder(data);
    this.depth.setData(depthColumns(data.bids || [], data.asks || []));
    if (this.loading) {
      this.pending.push(data); // added once the history is in, so nothing is lost or doubled
      return;
    }
    if (this.series.add(data)) {
      const span = RANGES[this.range];
      if (span !== null) this.series.trimBefore(Number(data.ts) - span);
      this.queueDraw();
    }
  }

  drawLadder(data) {
    const bids = data.bids || [];
    const asks = data.asks || [];
    const sizes = [...bids, ...asks].map(([, q]) => Number(q));
    const biggest = Math.max(1e-12, ...sizes);
    const rows = [];
    const cumulative = (levels) => {
      let total = 0;
      return levels.map(([p, q]) => [p, q, (total += Number(q))]);
    };
    const row = (side, [price, qty, total]) => {
      const bar = el("div", { class: `sizebar ${side}` });
      bar.style.width = `${Math.min(100, (Number(qty) / biggest) * 100).toFixed(1)}%`;
      return el("tr", { class: side },
        el("td", { class: "num price" }, price), el("td", { class: "num" }, qty),
        el("td", { class: "num muted" }, total.toPrecision(6).replace(/\.?0+$/, "")),
        el("td", { class: "barcol" }, bar));
    };
    for (const level of cumulative(asks).reverse()) rows.push(row("ask", level));
    rows.push(el("tr", { class: "spread" }, el("td", { colspan: 4 },
      `spread ${data.spread ?? "—"} (${data.spread_bps ?? "—"} bps) · mid ${data.mid ?? "—"}`)));
    for (const level of cumulative(bids)) rows.push(row("bid", level));
    this.ladder.tBodies[0].replaceChildren(...rows);
    this.updates += 1;
    this.ladder.dataset.updates = String(this.updates);
    this.ladder.dataset.seq = String(data.seq);
    this.ladder.dataset.ts = String(data.ts);
    $("#pair-metrics").textContent =
      `seq ${data.seq} · ${new Date(Number(data.ts)).toLocaleTimeString()}`;
  }

  setRange(range) {
    if (!(range in RANGES) || range === this.range) return;
    this.range = range;
    for (const button of $("#range").querySelectorAll("button")) {
      button.setAttribute("aria-pressed", String(button.dataset.range === range));
    }
    this.loadHistory();
  }

  historyQuery(format) {
    const span = RANGES[this.range];
    const since = span === null ? "" : `&since=${Math.floor(Date.now() - span)}`;
    return `api/analysis/history/${pairPath(this.pair)}?order=asc&format=${format}${since}`;
  }

  async loadHistory() {
    const pair = this.pair;
    const token = {};
    this.loading = token;
    this.pending = [];
    this.chartsBox.dataset.loaded = "false";
    this.info.textContent = "loading…";
    let rows = null;
    let failure = null;
    try {
      const answer = await this.api.json("GET", this.historyQuery("json"));
      rows = answer.snapshots || [];
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) rows = []; // nothing stored yet
      else failure = err;
    }
    if (pair !== this.pair || this.loading !== token) return; // another load took over
    this.loading = null;
    if (failure) {
      // keep what is drawn; the next reconnect or range change asks again
      say(this.error, errorText(failure));
      this.historyFailed = true;
    } else {
      if (this.historyFailed) say(this.error, "");
      this.historyFailed = false;
      this.series.reset(rows);
      this.chartsBox.dataset.loaded = "true";
    }
    for (const data of this.pending) this.series.add(data);
    this.pending = [];
    this.drawHistory();
  }

  queueDraw() {
    if (this.drawQueued) return;
    this.drawQueued = true;
    requestAnimationFrame(() => {
      this.drawQueued = false;
      this.drawHistory();
    });
  }

  drawHistory() {
    const cols = this.series.columns();
    if (this.charts) this.charts.setData(cols);
    const box = this.chartsBox.dataset;
    box.points = String(cols.points);
    box.stored = String(this.series.stored);
    box.live = String(this.series.live);
    box.breaks = String(cols.gapTs.length + cols.holeTs.length);
    box.gapTs = cols.gapTs.join(",");
    box.holeTs = cols.holeTs.join(",");
    const holes = cols.holeTs.length ? ` · ${fmtInt(cols.holeTs.length)} unmarked holes` : "";
    const gaps = cols.gapTs.length === 1 ? "1 gap" : `${fmtInt(cols.gapTs.length)} gaps`;
    this.info.textContent = cols.points
      ? `${fmtInt(cols.points)} snapshots · ${gaps}${holes} (drawn as breaks)`
      : "no snapshots in this range";
  }

  async downloadCsv() {
    const button = $("#csv");
    button.disabled = true;
    say(this.error, "");
    try {
      const blob = await this.api.blob(this.historyQuery("csv"));
      const url = URL.createObjectURL(blob);
      const name = `${this.pair.replace("/", "-")}-${this.range}.csv`;
      const link = el("a", { href: url, download: name, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (err) {
      say(this.error, errorText(err));
    } finally {
      button.disabled = false;
    }
  }
}
