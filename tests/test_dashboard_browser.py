"""The dashboard in a real browser: Debian's chromium, driven by Playwright's Python package,
against the simulator and a real daemon (``kms sim`` and ``kms daemon run`` as child
processes, one pair of them for the module).

Every test waits on conditions (Playwright's ``expect`` and locator waits, or a polled
predicate with a deadline), never on a fixed sleep. The page's Content-Security-Policy forbids
``eval``, so conditions are read from the DOM (``data-*`` attributes the page keeps), not
evaluated as strings in the page (``page.wait_for_function`` would be refused).

The browser console is watched for the whole run: an uncaught error or any console error that
is not a failed network request is a failure, and failed requests are allowed only where the
test caused them (the wrong password's 401, the daemon's restart). No request URL ever holds
the token.

Screenshots of each view are written to ``<tmp>/screenshots/``; ``docs/img/dashboard.png`` is
``pair.png`` from a run of this module.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.sync.client import connect as ws_connect

from cli_support import PASSWORD, LiveDaemon, make_snapshots, prefill
from conftest import skip_or_fail
from krakenstream.client import KmsClient
from krakenstream.core.wide import wide_columns
from krakenstream.errors import AuthError

try:
    from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None  # type: ignore[assignment]
else:
    # one CPU-starved moment on a shared machine is not a failure: conditions get 10 s
    expect.set_options(timeout=10_000)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
EMAIL = "dash@example.com"
PAIRS = ("ETH/USD", "BTC/USD")
#: a snapshot every half second: the ladder moves, and a gap of seconds spans whole ticks
DAEMON_ENV = {"KMS_KRAKEN_SNAPSHOT_INTERVAL": "0.5"}
#: browser messages of a failed request (the browser prints them, not our code)
NETWORK_ERROR = re.compile(
    r"^(Failed to load resource|WebSocket connection to '[^']*' failed)")


@dataclass
class Console:
    """What every page printed to its console, by the phase of the test it happened in."""

    phase: str = "setup"
    errors: list[tuple[str, str]] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    allowed: dict[str, str] = field(default_factory=dict)
    #: every token a page signed in with
    tokens: set[str] = field(default_factory=set)

    def watch(self, page: Page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.page_errors.append(f"{self.phase}: {exc}"))
        page.on("request", lambda request: self.urls.append(request.url))
        page.on("websocket", lambda ws: self.urls.append(ws.url))

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append((self.phase, message.text))

    def check(self, allowed: dict[str, str] | None = None) -> None:
        """No JavaScript error; a failed request only in a phase that allows one (phase →
        a regex its messages must match; phases are never reused, so what one test allowed
        stays allowed for the run)."""
        self.allowed.update(allowed or {})
        allowed = self.allowed
        assert self.page_errors == [], self.page_errors
        js = [(p, t) for p, t in self.errors if not NETWORK_ERROR.match(t)]
        assert js == [], f"JavaScript errors in the console: {js}"
        unexpected = [(p, t) for p, t in self.errors if NETWORK_ERROR.match(t)
                      and not (p in allowed and re.search(allowed[p], t))]
        assert unexpected == [], f"failed requests the test did not cause: {unexpected}"
        leaked = [u for u in self.urls if any(t in u for t in self.tokens)]
        assert leaked == [], f"a token in a URL: {leaked}"

    def remember_token(self, page: Page) -> None:
        session = page.evaluate("() => sessionStorage.getItem('kms.session')")
        assert session, "signed in, with the session in sessionStorage"
        self.tokens.add(orjson.loads(session)["token"])


@dataclass
class Dash:
    daemon: LiveDaemon
    browser: Browser
    shots: Path
    token: str
    console: Console = field(default_factory=Console)

    def new_page(self) -> Page:
        page = self.browser.new_page(viewport={"width": 1400, "height": 1000},
                                     accept_downloads=True)
        self.console.watch(page)
        return page

    def signed_in_page(self) -> Page:
        page = self.new_page()
        page.goto(self.daemon.url + "/")
        sign_in(page, PASSWORD)
        expect(page.locator("#view-pairs")).to_be_visible()
        self.console.remember_token(page)
        return page

    def shot(self, page: Page, name: str) -> None:
        self.shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)


def sign_in(page: Page, password: str) -> None:
    form = page.locator("#login-form")
    form.locator("input[name=email]").fill(EMAIL)
    form.locator("input[name=password]").fill(password)
    form.locator("button[type=submit]").click()


def wait_until(what: str, check: Callable[[], Any], within: float = 10.0) -> Any:
    """The first truthy ``check()``, polled; AssertionError naming ``what`` after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        time.sleep(0.05)


def attr_int(page: Page, selector: str, name: str) -> int:
    return int(page.locator(selector).get_attribute(name) or 0)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if sync_playwright is None:
        skip_or_fail("Playwright's Python package is not installed (pip install -e '.[test]')")
    if shutil.which(CHROMIUM) is None:
        skip_or_fail(f"{CHROMIUM} is absent (apt-get install -y chromium chromium-driver)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def dash(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dash]:
    home = tmp_path_factory.mktemp("dashboard")
    daemon = LiveDaemon(home / "kms", pairs=PAIRS, env=DAEMON_ENV)
    try:
        daemon.start()
        token = daemon.login(EMAIL)
        for pair in PAIRS:
            daemon.wait_snapshots(pair, token)
        yield Dash(daemon, browser, home / "screenshots", token)
    finally:
        daemon.stop()


def test_sign_in_with_a_wrong_then_the_right_password(dash: Dash) -> None:
    page = dash.new_page()
    dash.console.phase = "wrong-password"
    page.goto(dash.daemon.url + "/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    sign_in(page, "not the password")
    error = page.locator("#login-form .error")
    expect(error).to_have_text("invalid email or password (HTTP 401)")
    expect(page.locator("#view-pairs")).to_be_hidden()
    dash.shot(page, "login")
    dash.console.phase = "sign-in"
    sign_in(page, PASSWORD)
    expect(page.locator("#view-pairs")).to_be_visible()
    expect(page.locator("#who")).to_have_text(f"{EMAIL} (admin)")  # the daemon's first account
    dash.console.remember_token(page)
    # no cookie holds it either
    assert page.context.cookies() == []
    session = page.evaluate("() => sessionStorage.getItem('kms.session')")
    token = orjson.loads(session)["token"]
    with KmsClient(dash.daemon.url, token) as client:
        assert client.me()["email"] == EMAIL
    # signing out forgets the token: a reload shows the sign-in form again
    page.locator("#signout").click()
    expect(page.locator("#login-form")).to_be_visible()
    expect(page.locator("#notice")).to_have_text("signed out")
    page.reload()
    expect(page.locator("#login-form")).to_be_visible()
    page.close()
    # ... and the daemon revoked it (POST /api/users/logout): a copy of it opens nothing
    with KmsClient(dash.daemon.url, token) as client, pytest.raises(AuthError):
        client.me()
    dash.console.check({"wrong-password": r"status of 401"})


def test_a_token_revoked_elsewhere_signs_the_page_out(dash: Dash) -> None:
    """The token logged out from another client while a pair's stream is open: the gateway
    closes the stream with 4403 and the page signs out, saying why, instead of retrying."""
    dash.console.phase = "revoked"
    page = dash.signed_in_page()
    page.locator("#pairs-table a", has_text="ETH/USD").click()
    ladder = page.locator("#ladder")
    expect(ladder.locator("tr.bid")).to_have_count(10)
    session = page.evaluate("() => sessionStorage.getItem('kms.session')")
    with KmsClient(dash.daemon.url, orjson.loads(session)["token"]) as client:
        client.logout()
    expect(page.locator("#login-form")).to_be_visible(timeout=15_000)
    expect(page.locator("#notice")).to_have_text("your session was revoked: sign in again")
    assert page.evaluate("() => sessionStorage.getItem('kms.session')") is None
    page.close()
    # the pairs view may ask once more before the stream's close arrives: a 401 is fine here
    dash.console.check({"revoked": r"status of 401"})


def test_register_then_sign_in(dash: Dash) -> None:
    page = dash.new_page()
    dash.console.phase = "register"
    page.goto(dash.daemon.url + "/#/register")
    form = page.locator("#register-form")
    form.locator("input[name=email]").fill("newcomer@example.com")
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("input[name=confirm]").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    expect(page.locator("#who")).to_have_text("newcomer@example.com (reader)")
    expect(page.locator("#view-pairs")).to_be_visible()
    dash.console.remember_token(page)
    page.close()
    dash.console.check()


def test_pairs_view_lists_the_pairs(dash: Dash) -> None:
    dash.console.phase = "pairs"
    page = dash.signed_in_page()
    rows = page.locator("#pairs-table tbody tr")
    expect(rows).to_have_count(len(PAIRS))
    for pair in PAIRS:
        row = page.locator(f'#pairs-table tr[data-pair="{pair}"]')
        expect(row.locator(".state").first).to_have_text("live")
        # the last snapshot's age and the hour's coverage come from per-row requests
        expect(row.locator("td").nth(3)).to_have_text(re.compile(r"\d+ s ago"))
        expect(row.locator("td").nth(8)).to_have_text(re.compile(r"\d+\.\d %"))
    expect(page.locator("#health")).to_contain_text("daemon")
    dash.shot(page, "pairs")
    page.close()
    dash.console.check()


def test_ladder_updates_live(dash: Dash) -> None:
    dash.console.phase = "ladder"
    page = dash.signed_in_page()
    page.locator("#pairs-table a", has_text="ETH/USD").click()
    expect(page.locator("#pair-name")).to_have_text("ETH/USD")
    ladder = page.locator("#ladder")
    expect(ladder.locator("tr.bid")).to_have_count(10)
    expect(ladder.locator("tr.ask")).to_have_count(10)
    start = attr_int(page, "#ladder", "data-updates")
    began = time.monotonic()
    wait_until("3 ladder updates", lambda: attr_int(page, "#ladder", "data-updates") >= start + 3,
               within=5.0)
    assert time.monotonic() - began <= 5.0
    seqs = {page.locator("#ladder").get_attribute("data-seq")}
    wait_until("a new sequence number",
               lambda: page.locator("#ladder").get_attribute("data-seq") not in seqs)
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    dash.shot(page, "pair")
    page.close()
    dash.console.check()


def test_chart_shows_the_stored_points_and_a_break_at_a_gap(dash: Dash) -> None:
    dash.console.phase = "chart"
    page = dash.signed_in_page()
    page.goto(dash.daemon.url + "/#/pair/ETH-USD")
    charts = page.locator("#charts")
    expect(charts).to_have_attribute("data-loaded", "true")
    before = time.time() * 1000
    with KmsClient(dash.daemon.url, dash.token) as client:
        stored = [row for row in client.history("ETH/USD", order="asc")]
    shown = attr_int(page, "#charts", "data-points")
    assert shown >= len([r for r in stored if r["ts"] >= before - 3600_000]) - 2

    # a real gap: the exchange goes into maintenance and drops the feed, which waits before
    # it comes back; the first snapshot after that says gap_before
    simulate_maintenance(dash.daemon.sim_url, seconds=1)
    gap_ts = wait_until("a stored snapshot with gap_before after the stall",
                        lambda: first_gap_after(dash, before), within=25)
    # the live chart shows the break where it happened, from the stream
    wait_until("the break drawn live", lambda: str(gap_ts) in gap_list(page))
    # and the stored history draws it too: reload the range
    page.locator("#range button[data-range='15m']").click()
    expect(charts).to_have_attribute("data-loaded", "true")
    wait_until("the break drawn from history", lambda: str(gap_ts) in gap_list(page))
    with KmsClient(dash.daemon.url, dash.token) as client:
        in_range = [r for r in client.history("ETH/USD", order="asc",
                                              since=str(int(time.time() * 1000) - 900_000))]
    assert attr_int(page, "#charts", "data-stored") >= len(in_range) - 2
    marks = {r["ts"] for r in in_range[1:] if r["gap_before"]}
    assert marks <= set(map(int, gap_list(page))), "every stored gap is a break"
    dash.shot(page, "chart-gap")
    page.close()
    dash.console.check()


def test_csv_download_carries_the_range(dash: Dash) -> None:
    dash.console.phase = "csv"
    page = dash.signed_in_page()
    page.goto(dash.daemon.url + "/#/pair/ETH-USD")
    expect(page.locator("#charts")).to_have_attribute("data-loaded", "true")
    with page.expect_download() as info:
        page.locator("#csv").click()
    download = info.value
    assert download.suggested_filename == "ETH-USD-1h.csv"
    assert download.url.startswith("blob:")
    text = Path(download.path()).read_text()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == wide_columns(10)  # kms history --csv's: the wide layout, kraken.depth
    assert len(rows) > 1 and {r[1] for r in rows[1:]} == {"ETH/USD"}
    page.close()
    dash.console.check()


def test_untrack_removes_the_pair_and_track_brings_it_back(dash: Dash) -> None:
    dash.console.phase = "untrack"
    page = dash.signed_in_page()
    row = page.locator('#pairs-table tr[data-pair="BTC/USD"]')
    expect(row).to_be_visible()
    button = row.locator("button", has_text="untrack")
    button.click()
    expect(button).to_have_text("confirm untrack")
    button.click()
    expect(row).to_have_count(0)
    expect(page.locator("#notice")).to_have_text("stopped tracking BTC/USD")
    with KmsClient(dash.daemon.url, dash.token) as client:
        assert "BTC/USD" not in {p["pair"] for p in client.pairs()}
    page.locator("#track-form input[name=pair]").fill("btc-usd")
    page.locator("#track-form button").click()
    expect(row).to_have_count(1)
    expect(row.locator(".state").first).to_have_text("live", timeout=20_000)
    # the daemon's refusal is shown as it said it
    page.locator("#track-form input[name=pair]").fill("NOT A PAIR")
    page.locator("#track-form button").click()
    expect(page.locator("#pairs-error")).to_contain_text("is not a pair like ETH/USD")
    expect(page.locator("#pairs-error")).to_contain_text("HTTP 422")
    page.close()
    dash.console.check({"untrack": r"status of 422"})


def test_daemon_restart_shows_reconnecting_down_then_live(dash: Dash) -> None:
    dash.console.phase = "before-restart"
    page = dash.signed_in_page()
    page.goto(dash.daemon.url + "/#/pair/ETH-USD")
    conn = page.locator("#conn")
    expect(conn).to_have_attribute("data-state", "live")
    expect(page.locator("#charts")).to_have_attribute("data-loaded", "true")
    wait_until("a first book", lambda: attr_int(page, "#ladder", "data-updates") >= 1)
    breaks_before = attr_int(page, "#charts", "data-breaks")
    dash.console.phase = "restart"
    dash.daemon.stop_daemon()
    expect(conn).to_have_text("reconnecting")
    # the last book stays on screen meanwhile, and the pair's state is not claimed live
    expect(page.locator("#ladder tr.bid")).to_have_count(10)
    expect(page.locator("#pair-state")).to_have_text("unknown")
    dash.shot(page, "reconnecting")
    # still nothing after a while (DOWN_AFTER_MS in connection.js): it says so
    expect(conn).to_have_text("daemon down", timeout=25_000)
    dash.daemon.start_daemon()
    expect(conn).to_have_text("live", timeout=30_000)
    dash.console.phase = "after-restart"
    updates = attr_int(page, "#ladder", "data-updates")
    wait_until("the ladder moving again",
               lambda: attr_int(page, "#ladder", "data-updates") >= updates + 2)
    # the history is fetched again: the restart's hole is a break, never bridged
    wait_until("the restart drawn as a break",
               lambda: attr_int(page, "#charts", "data-breaks") > breaks_before, within=15)
    page.close()
    dash.console.check({"restart": r"net::ERR_CONNECTION_REFUSED"})


def test_the_pure_modules_in_the_browser(dash: Dash) -> None:
    """series.js, backoff.js: the page's own modules, imported in the browser, on made-up
    data (breaks where marked, and at a hole no one marked; the depth columns; the delays)."""
    page = dash.new_page()
    dash.console.phase = "modules"
    page.goto(dash.daemon.url + "/")
    result = page.evaluate("""async () => {
        const { Series, depthColumns } = await import("./static/series.js");
        const { backoff } = await import("./static/backoff.js");
        const s = new Series();
        const row = (ts, gap) => ({ ts, gap_before: gap, mid: "10.5", best_bid: "10",
                                    best_ask: "11", spread_bps: "952.38", imbalance: "0.1" });
        s.reset([row(3000, true), row(1000, true), row(2000, false), row(4000, false),
                 row(9000, false)]);
        const added = [s.add(row(10000, false)), s.add(row(10000, false))];
        const c = s.columns();
        s.trimBefore(4000);
        const slow = backoff(500, 5000, () => 1), fast = backoff(500, 5000, () => 0);
        return {
            x: c.x, mid: c.mid, gapTs: c.gapTs, holeTs: c.holeTs, points: c.points,
            stored: s.stored, live: s.live, added, left: s.length,
            depth: depthColumns([["100", "1"], ["99", "2"]], [["101", "3"], ["102", "1"]]),
            slow: Array.from({ length: 6 }, () => slow.next().value),
            fast: Array.from({ length: 3 }, () => fast.next().value),
        };
    }""")
    # sorted, the first point's mark ignored (nothing before it to break from)
    assert result["x"] == [1, 2, 2.5, 3, 4, 6.5, 9, 10]
    assert result["mid"] == [10.5, 10.5, None, 10.5, 10.5, None, 10.5, 10.5]
    assert result["gapTs"] == [3000] and result["holeTs"] == [9000]
    assert result["points"] == 6 and result["stored"] == 5 and result["live"] == 1
    assert result["added"] == [True, False]  # a repeated snapshot is not drawn twice
    assert result["left"] == 3
    assert result["depth"] == [[99, 100, 101, 102], [3, 1, None, None], [None, None, 3, 4]]
    assert result["slow"] == [500, 1000, 2000, 4000, 5000, 5000]
    assert result["fast"] == [250, 500, 1000]
    page.close()
    dash.console.check()


MANY = 600


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveDaemon, str]]:
    """A bare gateway over a history of MANY pairs (written before it starts)."""
    home = tmp_path_factory.mktemp("many") / "kms"
    home.mkdir()
    now = int(time.time() * 1000)
    snaps = [snap for i in range(MANY)
             for snap in make_snapshots(f"P{i:03d}/USD", 3, start_ms=now - 60_000)]
    # in a thread of its own: Playwright's sync API runs an event loop in this one
    with ThreadPoolExecutor(1) as pool:
        pool.submit(prefill, home, snaps).result()
    daemon = LiveDaemon(home, roles=("gateway",))
    try:
        daemon.start()
        yield daemon, daemon.login(EMAIL)
    finally:
        daemon.stop()


def test_many_pairs_fetch_only_what_is_on_screen(browser: Browser,
                                                  many: tuple[LiveDaemon, str]) -> None:
    """With hundreds of pairs the page asks for summaries only of the rows on screen, a few
    at a time, draws a bounded number of rows, and says how many it left out."""
    daemon, _token = many
    console = Console(phase="many")
    dash = Dash(daemon, browser, Path(), "", console)
    inflight: set[str] = set()
    peak = 0
    summaries: list[str] = []

    def started(request: Any) -> None:
        nonlocal peak
        if "/api/analysis/" in request.url:
            inflight.add(request.url)
            peak = max(peak, len(inflight))
            if "/summary/" in request.url:
                summaries.append(request.url)

    def ended(request: Any) -> None:
        inflight.discard(request.url)

    page = dash.new_page()
    page.on("request", started)
    page.on("requestfinished", ended)
    page.on("requestfailed", ended)
    page.goto(daemon.url + "/")
    sign_in(page, PASSWORD)
    expect(page.locator("#view-pairs")).to_be_visible()
    console.remember_token(page)
    rows = page.locator("#pairs-table tbody tr")
    expect(rows).to_have_count(500)
    expect(page.locator("#pairs-more")).to_have_text("showing 500 of 600 pairs: filter to narrow")
    coverage = page.locator('#pairs-table tr[data-pair="P010/USD"] td').nth(8)
    expect(coverage).to_have_text(re.compile(r"\d+\.\d %"))
    on_screen = len(summaries)
    assert 10 <= on_screen <= 60, f"{on_screen} summaries asked for ~25 rows on screen"
    assert peak <= 4, f"{peak} per-pair requests at once"
    # a row scrolled into view gets its numbers then
    last = page.locator('#pairs-table tr[data-pair="P499/USD"]')
    last.scroll_into_view_if_needed()
    expect(last.locator("td").nth(8)).to_have_text(re.compile(r"\d+\.\d %"))
    assert len(summaries) < 150 and peak <= 4
    # the filter narrows what is drawn
    page.locator("#pair-filter").fill("P59")
    expect(rows).to_have_count(10)
    expect(page.locator("#pairs-more")).to_be_hidden()
    page.close()
    console.check()


# -- helpers -----------------------------------------------------------------------------------


def simulate_maintenance(sim_url: str, seconds: float) -> None:
    """Ask the simulator (another process) for a maintenance that closes its connections: the
    feed waits at least 5 s before it connects again (feed/backoff.py), so whole publish ticks
    pass with no live book, and the first snapshot after them says gap_before."""
    with ws_connect(sim_url, open_timeout=5) as ws:
        ws.send(orjson.dumps({"method": "x-sim-fault", "req_id": 1, "params": {
            "kind": "maintenance", "seconds": seconds, "close": True}}).decode())
        while True:
            msg = orjson.loads(ws.recv(timeout=5))
            if msg.get("method") == "x-sim-fault":
                assert msg.get("success") is True, msg
                return


def first_gap_after(dash: Dash, since_ms: float) -> int | None:
    with KmsClient(dash.daemon.url, dash.token) as client:
        for row in client.history("ETH/USD", order="asc", since=str(int(since_ms))):
            if row["gap_before"]:
                return int(row["ts"])
    return None


def gap_list(page: Page) -> list[str]:
    text = page.locator("#charts").get_attribute("data-gap-ts") or ""
    return [t for t in text.split(",") if t]


def test_the_api_reference_works_offline(dash: Dash) -> None:
    """``/docs`` with every request that would leave this machine refused: swagger-ui comes
    from the package, runs under its policy (no console error), and tries a route out."""
    dash.console.phase = "docs"
    page = dash.new_page()
    left: list[str] = []

    def only_here(route: Any) -> None:
        if route.request.url.startswith(dash.daemon.url):
            route.continue_()
        else:
            left.append(route.request.url)
            route.abort()

    page.route("**/*", only_here)
    page.goto(dash.daemon.url + "/docs")
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible()
    assert operations.count() >= 10
    health = page.locator(".opblock", has_text="/health").first
    health.locator(".opblock-summary").click()
    health.locator(".try-out__btn").click()
    health.locator(".execute").click()
    expect(health.locator(".live-responses-table tbody .response-col_status").first
           ).to_have_text(re.compile("200"))
    dash.shot(page, "docs")
    page.close()
    assert left == []
    dash.console.check()
