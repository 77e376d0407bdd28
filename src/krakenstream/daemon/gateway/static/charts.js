// The pair view's charts, on the vendored uPlot: mid with the best bid/ask band, spread in
// basis points and imbalance over time (cursors in sync), and the book's cumulative depth.
// Charts are made once their container is laid out (uPlot needs a width) and follow its size.

import uPlot from "./vendor/uplot-1.6.32/uPlot.esm.js";

const COLOR = {
  text: "#9aa7b4",
  grid: "rgba(154, 167, 180, 0.12)",
  mid: "#d7dde5",
  bid: "#2fbf71",
  ask: "#e5534b",
  band: "rgba(120, 150, 190, 0.20)",
  bps: "#e3b341",
  imb: "#6cb6ff",
  bidFill: "rgba(47, 191, 113, 0.25)",
  askFill: "rgba(229, 83, 75, 0.25)",
};
const SYNC_KEY = "kms-history";

function axis(extra = {}) {
  return {
    stroke: COLOR.text,
    grid: { stroke: COLOR.grid, width: 1 },
    ticks: { stroke: COLOR.grid, width: 1 },
    ...extra,
  };
}

/** A uPlot that is created on first data once its element has a width, then kept sized. */
class Chart {
  constructor(element, height, options) {
    this.element = element;
    this.height = height;
    this.options = options;
    this.plot = null;
    this.observer = new ResizeObserver(() => this.fit());
    this.observer.observe(element);
  }

  setData(data) {
    this.data = data;
    const width = this.element.clientWidth;
    if (!this.plot) {
      if (width === 0) return; // not laid out yet: fit() makes it
      this.plot = new uPlot({ ...this.options, width, height: this.height }, data, this.element);
    } else {
      this.plot.setData(data);
    }
  }

  fit() {
    const width = this.element.clientWidth;
    if (width === 0) return;
    if (!this.plot) {
      if (this.data) this.setData(this.data);
    } else if (width !== this.plot.width) {
      this.plot.setSize({ width, height: this.height });
    }
  }

  destroy() {
    this.observer.disconnect();
    if (this.plot) this.plot.destroy();
    this.plot = null;
  }
}

const priceAxis = () => axis({ size: 84 });

export class HistoryCharts {
  constructor(midEl, spreadEl, imbalanceEl) {
    // one cursor object each (uPlot keeps state in it), synced by their common key; no
    // drag-to-zoom: the live data resets the scales every snapshot
    const cursor = () => ({ sync: { key: SYNC_KEY }, drag: { x: false, y: false } });
    this.mid = new Chart(midEl, 260, {
      cursor: cursor(),
      scales: { x: { time: true } },
      series: [
        {},
        { label: "mid", stroke: COLOR.mid, width: 1.5 },
        { label: "best bid", stroke: COLOR.bid, width: 1 },
        { label: "best ask", stroke: COLOR.ask, width: 1 },
      ],
      bands: [{ series: [3, 2], fill: COLOR.band }],
      axes: [axis(), priceAxis()],
    });
    this.spread = new Chart(spreadEl, 140, {
      cursor: cursor(),
      scales: { x: { time: true } },
      series: [{}, { label: "spread (bps)", stroke: COLOR.bps, width: 1 }],
      axes: [axis(), priceAxis()],
    });
    this.imbalance = new Chart(imbalanceEl, 140, {
      cursor: cursor(),
      scales: { x: { time: true }, y: { range: [-1, 1] } },
      series: [{}, { label: "imbalance", stroke: COLOR.imb, width: 1 }],
      axes: [axis(), priceAxis()],
    });
  }

  /** cols: Series.columns() */
  setData(cols) {
    this.mid.setData([cols.x, cols.mid, cols.bid, cols.ask]);
    this.spread.setData([cols.x, cols.bps]);
    this.imbalance.setData([cols.x, cols.imb]);
  }

  destroy() {
    for (const c of [this.mid, this.spread, this.imbalance]) c.destroy();
  }
}

export class DepthChart {
  constructor(element) {
    const stepped = uPlot.paths.stepped({ align: 1 });
    this.chart = new Chart(element, 240, {
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false }, y: { range: (u, min, max) => [0, (max || 1) * 1.05] } },
      series: [
        { label: "price" },
        { label: "bids (cumulative)", stroke: COLOR.bid, fill: COLOR.bidFill, paths: stepped },
        { label: "asks (cumulative)", stroke: COLOR.ask, fill: COLOR.askFill, paths: stepped },
      ],
      axes: [axis(), axis({ size: 70 })],
    });
  }

  setData(columns) {
    this.chart.setData(columns);
  }

  destroy() {
    this.chart.destroy();
  }
}
