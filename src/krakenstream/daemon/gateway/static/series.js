// A pair's time series for the charts: stored history, extended live from the stream.
//
// Pure (no DOM, no clock). Points are kept oldest first with the few numbers the charts draw.
// A break is never bridged: before a snapshot marked gap_before, and before one that comes
// more than HOLE_STEPS publish intervals after its predecessor (a hole no one marked), the
// columns get an extra x with every value null, which uPlot draws as a cut in the line.

/** a step this many times the publish interval is a hole even without a gap_before mark */
export const HOLE_STEPS = 3;

function num(text) {
  if (text === null || text === undefined || text === "") return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : null;
}

export class Series {
  /** cap: points kept at most (the oldest go first) */
  constructor(cap = 20000) {
    this.cap = cap;
    this.clear();
  }

  clear() {
    this.ts = [];
    this.gap = [];
    this.mid = [];
    this.bid = [];
    this.ask = [];
    this.bps = [];
    this.imb = [];
    this.stored = 0;
    this.live = 0;
  }

  get length() {
    return this.ts.length;
  }

  get lastTs() {
    return this.ts.length ? this.ts[this.ts.length - 1] : null;
  }

  /** Replace everything with stored snapshots (any order; repeats dropped). */
  reset(rows) {
    this.clear();
    const sorted = [...rows].sort((a, b) => a.ts - b.ts);
    for (const row of sorted) if (this.push(row)) this.stored += 1;
  }

  /** Append one snapshot from the stream; false if it is not newer than the last one. */
  add(row) {
    if (!this.push(row)) return false;
    this.live += 1;
    return true;
  }

  push(row) {
    const ts = Number(row.ts);
    if (!Number.isFinite(ts) || (this.length && ts <= this.lastTs)) return false;
    this.ts.push(ts);
    this.gap.push(Boolean(row.gap_before));
    this.mid.push(num(row.mid));
    this.bid.push(num(row.best_bid));
    this.ask.push(num(row.best_ask));
    this.bps.push(num(row.spread_bps));
    this.imb.push(num(row.imbalance));
    if (this.length > this.cap) this.drop(this.length - this.cap);
    return true;
  }

  /** Forget the points older than ts (a sliding range). */
  trimBefore(ts) {
    let n = 0;
    while (n < this.length && this.ts[n] < ts) n += 1;
    if (n) this.drop(n);
  }

  drop(n) {
    for (const a of [this.ts, this.gap, this.mid, this.bid, this.ask, this.bps, this.imb]) {
      a.splice(0, n);
    }
  }

  /** The smallest step between two points: the publish interval, as far as we can tell. */
  step() {
    let best = null;
    for (let i = 1; i < this.length; i += 1) {
      const d = this.ts[i] - this.ts[i - 1];
      if (d > 0 && (best === null || d < best)) best = d;
    }
    return best;
  }

  /**
   * uPlot's columns (x in seconds) with a null row at each break, and what was drawn:
   * points, breaks, and the ts of the points that follow a marked gap / an unmarked hole.
   */
  columns() {
    const x = [], mid = [], bid = [], ask = [], bps = [], imb = [];
    const gapTs = [], holeTs = [];
    const step = this.step();
    for (let i = 0; i < this.length; i += 1) {
      const ts = this.ts[i];
      if (i > 0) {
        const marked = this.gap[i];
        const hole = step !== null && ts - this.ts[i - 1] > HOLE_STEPS * step;
        if (marked || hole) {
          (marked ? gapTs : holeTs).push(ts);
          x.push((this.ts[i - 1] + ts) / 2000);
          for (const a of [mid, bid, ask, bps, imb]) a.push(null);
        }
      }
      x.push(ts / 1000);
      mid.push(this.mid[i]);
      bid.push(this.bid[i]);
      ask.push(this.ask[i]);
      bps.push(this.bps[i]);
      imb.push(this.imb[i]);
    }
    return { x, mid, bid, ask, bps, imb, points: this.length, gapTs, holeTs };
  }
}

/** Cumulative depth for the depth chart: x = prices ascending, bids then asks. */
export function depthColumns(bids, asks) {
  const b = bids.map(([p, q]) => [Number(p), Number(q)]).filter(([p, q]) => p > 0 && q >= 0);
  const a = asks.map(([p, q]) => [Number(p), Number(q)]).filter(([p, q]) => p > 0 && q >= 0);
  // bids come best (highest) first: the total at a price is everything at it or better
  let total = 0;
  const bidCum = b.map(([p, q]) => [p, (total += q)]).reverse();
  total = 0;
  const askCum = a.map(([p, q]) => [p, (total += q)]);
  const x = [], yBid = [], yAsk = [];
  for (const [p, c] of bidCum) {
    x.push(p);
    yBid.push(c);
    yAsk.push(null);
  }
  for (const [p, c] of askCum) {
    if (x.length && p <= x[x.length - 1]) continue; // a crossed level cannot be drawn in order
    x.push(p);
    yBid.push(null);
    yAsk.push(c);
  }
  return [x, yBid, yAsk];
}
