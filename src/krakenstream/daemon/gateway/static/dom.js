// Small DOM and formatting helpers. Text from the daemon always goes in as textContent,
// never as HTML.

export const $ = (selector, root = document) => root.querySelector(selector);

/** el("td", {class: "num"}, "text", child...) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function show(node, visible) {
  node.hidden = !visible;
}

/** Show a message in an error/notice element, or hide it with an empty one. */
export function say(node, message) {
  node.textContent = message || "";
  node.hidden = !message;
}

export function fmtInt(n) {
  return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US");
}

export function fmtPct(ratio) {
  return ratio === null || ratio === undefined ? "—" : `${(ratio * 100).toFixed(1)} %`;
}

/** "4 s ago", "3 min ago", "2.5 h ago", "—" */
export function fmtAge(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  const s = Math.max(0, ms / 1000);
  if (s < 60) return `${s.toFixed(0)} s ago`;
  if (s < 3600) return `${(s / 60).toFixed(0)} min ago`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h ago`;
  return `${(s / 86400).toFixed(1)} d ago`;
}

/** An ApiError (or any error) as one line for the page: the daemon's own message and the
 * status. Its hint is left out: hints name `kms` commands, for the terminal. */
export function errorText(err) {
  if (!err) return "";
  return err.status ? `${err.message} (HTTP ${err.status})` : err.message;
}
