// The gateway's HTTP API as the page uses it: the same public routes as every other client.
//
// The session (token, email, expiry) lives in sessionStorage: it survives a reload of this
// tab and goes with it, is never put in a URL, and is no cookie (script-readable or not).
// Every request reports to the connection monitor whether the daemon answered at all.

const SESSION_KEY = "kms.session";

export class ApiError extends Error {
  /** status 0 means the daemon did not answer (refused, reset, timed out). */
  constructor(status, code, message, hint) {
    super(message);
    this.status = status;
    this.code = code;
    this.hint = hint || null;
  }
}

/** A path segment for a pair: ETH/USD -> ETH-USD (the gateway reads both). */
export function pairPath(pair) {
  return encodeURIComponent(pair.replace("/", "-"));
}

export class Api {
  constructor(monitor) {
    this.monitor = monitor;
    this.session = readSession();
    this.onSignedOut = () => {};
  }

  get token() {
    return this.session ? this.session.token : null;
  }

  signIn(session) {
    this.session = session;
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  }

  signOut(reason) {
    const had = this.session !== null;
    this.session = null;
    sessionStorage.removeItem(SESSION_KEY);
    if (had) this.onSignedOut(reason);
  }

  /**
   * Sign out for real: the daemon revokes the token (POST /api/users/logout, so a copy of it
   * left anywhere stops working too), then the page forgets it. The page forgets it even when
   * the daemon cannot be reached; the token then lapses at its expiry.
   */
  async logout() {
    if (this.token) {
      try {
        await this.fetch("POST", "api/users/logout", { auth: true });
      } catch {
        // unreachable, or already refused (a 401 has signed us out): forget it anyway
      }
    }
    this.signOut("signed out");
  }

  /** The answer's JSON; ApiError (with the server's own message) otherwise. */
  async json(method, path, { body, auth = true, signal } = {}) {
    const response = await this.fetch(method, path, { body, auth, signal });
    return response.status === 204 ? null : response.json();
  }

  /** The answer as a Blob (CSV exports): fetched with the header, never a token in a URL. */
  async blob(path, { signal } = {}) {
    const response = await this.fetch("GET", path, { auth: true, signal });
    return response.blob();
  }

  async fetch(method, path, { body, auth = true, signal } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth) {
      if (!this.token) throw new ApiError(401, "unauthorized", "not signed in");
      headers.Authorization = `Bearer ${this.token}`;
    }
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        cache: "no-store",
        credentials: "omit",
        referrerPolicy: "no-referrer",
      });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      this.monitor.failed();
      throw new ApiError(0, "unreachable", "cannot reach the daemon");
    }
    this.monitor.answered();
    if (response.ok) return response;
    const error = await errorOf(response);
    if (response.status === 401 && auth) this.signOut("your session ended: sign in again");
    throw error;
  }
}

async function errorOf(response) {
  let message = `the daemon answered ${response.status}`;
  let code = "http";
  let hint = null;
  try {
    const body = await response.json();
    if (body && typeof body.error === "string") {
      message = body.error;
      code = typeof body.code === "string" ? body.code : code;
      hint = typeof body.hint === "string" ? body.hint : null;
    }
  } catch {
    // not JSON (a proxy's page): the status says enough
  }
  return new ApiError(response.status, code, message, hint);
}

function readSession() {
  try {
    const session = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    if (!session || typeof session.token !== "string") return null;
    if (session.expires_at && Date.parse(session.expires_at) <= Date.now()) return null;
    return session;
  } catch {
    return null;
  }
}
