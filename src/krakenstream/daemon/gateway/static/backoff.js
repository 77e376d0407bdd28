// Reconnect delays: doubling from `first` ms up to `cap` ms, each with jitter (between half
// and all of the step), so that many pages do not all come back on the same tick after a
// daemon restart. A pure generator, as the Python side's backoff.

export function* backoff(first, cap, random = Math.random) {
  let step = first;
  for (;;) {
    yield Math.round(step * (0.5 + random() / 2));
    step = Math.min(cap, step * 2);
  }
}
