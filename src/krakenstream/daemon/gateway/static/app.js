// The dashboard's entry point: the session, the views, and the route in the URL's fragment
// (#/pairs, #/pair/ETH-USD, #/login, #/register). The fragment never holds a token.

import { Api } from "./api.js";
import { ConnectionMonitor } from "./connection.js";
import { $, say, show } from "./dom.js";
import { LoginView } from "./login.js";
import { PairView } from "./pair.js";
import { PairsView } from "./pairs.js";

const MAX_TIMER_MS = 2 ** 31 - 1;

const monitor = new ConnectionMonitor($("#conn"));
const api = new Api(monitor);
const pairsView = new PairsView(api, monitor);
const pairView = new PairView(api, monitor);
const loginView = new LoginView(api, () => signedIn());
let me = null;
let expiryTimer = null;

api.onSignedOut = (reason) => {
  me = null;
  clearTimeout(expiryTimer);
  say($("#notice"), reason);
  route();
};

$("#signout").addEventListener("click", () => api.logout());
window.addEventListener("hashchange", () => route());

async function signedIn() {
  say($("#notice"), "");
  if (location.hash === "#/login" || location.hash === "#/register") location.hash = "#/pairs";
  await whoAmI();
  route();
}

async function whoAmI() {
  if (!api.token) return;
  const session = api.session;
  clearTimeout(expiryTimer);
  if (session.expires_at) {
    const left = Date.parse(session.expires_at) - Date.now();
    expiryTimer = setTimeout(
      () => api.signOut("your session expired: sign in again"),
      Math.max(0, Math.min(left, MAX_TIMER_MS)));
  }
  try {
    me = await api.json("GET", "api/users/me");
  } catch {
    me = null; // a 401 has signed us out already; anything else: the views will say it
  }
}

/** The pair named in a fragment like #/pair/ETH-USD, as ETH/USD. */
function pairOf(hash) {
  const match = /^#\/pair\/([^/]+)$/.exec(hash);
  if (!match) return null;
  return decodeURIComponent(match[1]).toUpperCase().replace("-", "/");
}

function route() {
  const hash = location.hash || "#/pairs";
  pairsView.hide();
  pairView.hide();
  const signedInNow = Boolean(api.token);
  show($("#signout"), signedInNow);
  $("#who").textContent = signedInNow
    ? `${(me && me.email) || api.session.email}${me && me.role ? ` (${me.role})` : ""}`
    : "";
  if (!signedInNow) {
    loginView.show(hash === "#/register" ? "register" : "login");
    return;
  }
  loginView.hide();
  const pair = pairOf(hash);
  if (pair) pairView.show(pair);
  else pairsView.show(me);
}

async function start() {
  monitor.probe(); // the header says whether the daemon answers before anyone signs in
  if (api.token) await whoAmI();
  route();
}

start();
