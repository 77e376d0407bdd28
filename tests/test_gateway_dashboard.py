"""The dashboard's router in-process (httpx over ASGI): what is served, with which headers, and
that the API around it answers as before. The page itself runs in a browser in
``test_dashboard_browser.py``."""

from __future__ import annotations

import glob
import re
import tomllib
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from gateway_support import Stack, settings_for, stack
from krakenstream.daemon.gateway import dashboard
from krakenstream.wire import HINTS

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "krakenstream"
STATIC = PACKAGE / "daemon" / "gateway" / dashboard.STATIC_DIR
UPLOT = "vendor/uplot-1.6.32/uPlot.esm.js"
SWAGGER = "vendor/swagger-ui-5.35.0/swagger-ui-bundle.js"


@pytest.fixture
async def gw(kms_home: Path) -> AsyncIterator[Stack]:
    async with stack(settings_for(kms_home), roles=("gateway",)) as s:
        yield s


def csp_of(headers: object) -> dict[str, str]:
    text = headers["content-security-policy"]  # type: ignore[index]
    return {part.split()[0]: part.partition(" ")[2] for part in text.split("; ")}


async def test_index_is_served_with_the_security_and_cache_headers(gw: Stack) -> None:
    r = await gw.client.get("/", headers={"Host": "127.0.0.1:3000"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>krakenstream</title>" in r.text
    csp = csp_of(r.headers)
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert csp["connect-src"] == "'self' ws://127.0.0.1:3000 wss://127.0.0.1:3000"
    assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'"
    assert "unsafe" not in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-cache"
    etag = r.headers["etag"]

    again = await gw.client.get("/", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag and "content-security-policy" in again.headers

    head = await gw.client.head("/")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(r.content)


async def test_static_files_and_their_cache(gw: Stack) -> None:
    own = await gw.client.get("/static/app.js")
    assert own.status_code == 200
    assert own.headers["content-type"] == "text/javascript; charset=utf-8"
    assert own.headers["cache-control"] == "no-cache"
    vendored = await gw.client.get("/static/" + UPLOT)
    assert vendored.status_code == 200
    assert vendored.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert vendored.content == (STATIC / UPLOT).read_bytes()
    css = await gw.client.get("/static/app.css")
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert css.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", [
    "/static/nope.js",
    "/static/vendor/VENDORED.md",  # in the folder, but not a type the page loads
    "/static/vendor/uplot-1.6.32/LICENSE",
    "/static/..%2F..%2Fdashboard.py",
    "/static/%2E%2E/dashboard.py",
    "/static/",
])
async def test_anything_else_is_a_json_404(gw: Stack, path: str) -> None:
    r = await gw.client.get(path)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    assert r.json()["code"] == "not_found"


async def test_the_api_answers_as_before(gw: Stack) -> None:
    r = await gw.client.get("/nope")
    assert r.status_code == 404
    assert r.json() == {"error": "no such route: GET /nope", "code": "not_found",
                        "hint": HINTS["not_found"]}
    assert "content-security-policy" not in r.headers
    r = await gw.client.get("/api/pairs")
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    assert "content-security-policy" not in r.headers
    r = await gw.client.post("/")
    assert r.status_code == 405 and r.json()["code"] == "invalid"
    health = await gw.client.get("/health")
    assert health.status_code == 200 and health.json()["status"] in ("ok", "degraded")
    # the dashboard's routes are not part of the API's schema
    paths = (await gw.client.get("/openapi.json")).json()["paths"]
    assert "/" not in paths and not any(p.startswith("/static") for p in paths)


@pytest.mark.parametrize("host", ["evil.example;script-src *", "a b", "x" * 300, ""])
async def test_a_strange_host_header_is_not_repeated_in_the_policy(gw: Stack, host: str) -> None:
    r = await gw.client.get("/", headers={"Host": host})
    assert r.status_code == 200
    assert csp_of(r.headers)["connect-src"] == "'self'"


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "style" in a or tag == "style" or any(k.startswith("on") for k in a):
            self.inline.append(f"<{tag} {a}>")
        if tag == "script":
            self._in_script = True
            if not a.get("src"):
                self.inline.append("<script> without src")
        for key in ("src", "href"):
            ref = a.get(key)
            if ref and ref.startswith("static/"):
                self.refs.append(ref)

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("inline script text")


async def test_the_page_needs_no_inline_code_and_every_file_it_names_is_served(
    gw: Stack,
) -> None:
    page = _Page()
    page.feed((await gw.client.get("/")).text)
    assert page.inline == []
    assert "static/app.js" in page.refs
    docs = _Page()  # the API reference page: the same rules
    docs.feed((await gw.client.get("/docs")).text)
    assert docs.inline == []
    assert "static/docs.js" in docs.refs and f"static/{SWAGGER}" in docs.refs
    page.refs += docs.refs
    # follow the modules' imports: all are served, and none leaves this origin
    seen: set[str] = set()
    todo = [ref.removeprefix("static/") for ref in page.refs]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        r = await gw.client.get("/static/" + name)
        assert r.status_code == 200, name
        if name.endswith(".js"):
            assert "innerHTML" not in r.text or name.startswith("vendor/"), name
            base = name.rpartition("/")[0]
            for target in re.findall(r'^import .* from "([^"]+)";', r.text, re.M):
                assert target.startswith("./"), f"{name} imports {target}"
                todo.append(f"{base}/{target[2:]}".lstrip("/"))
    assert UPLOT in seen
    own = {p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*.js")}
    assert own <= seen, f"modules nothing imports: {own - seen}"


def test_every_static_file_is_package_data() -> None:
    """A wheel carries exactly what pyproject's package-data names: every file of the page."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["krakenstream"]
    covered = {Path(p).resolve() for pat in patterns
               for p in glob.glob(str(PACKAGE / pat), recursive=True)}
    files = {p.resolve() for p in STATIC.rglob("*") if p.is_file()}
    assert files and files <= covered, sorted(str(f) for f in files - covered)
    served = dashboard.static_files()
    assert "index.html" in served and UPLOT in served


async def test_the_api_reference_is_served_from_the_package(gw: Stack) -> None:
    """``/docs`` is swagger-ui from the package (FastAPI's page loads it from a CDN), under
    the dashboard's policy but for swagger-ui's ``data:`` icons; ``/redoc`` (a CDN too) is
    gone."""
    r = await gw.client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert "http" not in r.text  # every address is relative: nothing from elsewhere
    csp = csp_of(r.headers)
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert csp["img-src"] == "'self' data:"
    assert "unsafe" not in r.headers["content-security-policy"]
    bundle = await gw.client.get("/static/" + SWAGGER)
    assert bundle.status_code == 200 and bundle.content == (STATIC / SWAGGER).read_bytes()
    assert (await gw.client.get("/redoc")).status_code == 404
    assert (await gw.client.head("/docs")).status_code == 200
