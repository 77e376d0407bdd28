"""``/`` and ``/static/``: the dashboard, a web page and its static files, from the package;
and ``/docs``, the API reference (a vendored swagger-ui over ``/openapi.json``).

The page (plain ES modules and CSS, a vendored uPlot, no build step) uses the same HTTP API
and WebSocket stream as every other client: this router only serves files. They are read
once from the package (``importlib.resources``, so a wheel serves them as an editable install
does) into memory, a few hundred kilobytes, and only the files found there are served: a
path is a key in that table, never joined onto a folder, so nothing outside it can be named.

Every answer carries the security headers of :func:`security_headers`: a Content-Security-
Policy that allows scripts, styles, images and fonts from this origin only (no inline script
or style), connections to this origin and its WebSocket, and no framing; ``nosniff``; no
referrer. Cache: ``index.html`` and our own modules are ``no-cache`` (revalidated by ETag
every time, so an upgraded daemon is seen at once); vendored files live under a folder named
with their version (``vendor/uplot-1.6.32/``) and are cached for a year as immutable.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import re
from dataclasses import dataclass
from functools import cache
from importlib.resources.abc import Traversable

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...errors import NotFound

#: the folder beside this module that holds the page and its files
STATIC_DIR = "static"
#: the URL prefix of the static files (the page itself is ``/``)
STATIC_PREFIX = "/static/"

#: what is served, by file extension; anything else in the folder (licences, notes) is not
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
#: a Host header safe to repeat in the CSP: a name or IPv4, or a bracketed IPv6, and a port
_HOST = re.compile(r"(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    media_type: str
    etag: str
    cache_control: str


def _walk(folder: Traversable, prefix: str = "") -> dict[str, Traversable]:
    found: dict[str, Traversable] = {}
    for entry in folder.iterdir():
        name = prefix + entry.name
        if entry.is_dir():
            found.update(_walk(entry, name + "/"))
        elif entry.is_file():
            found[name] = entry
    return found


def load_files(folder: Traversable) -> dict[str, StaticFile]:
    """The servable files under ``folder``, by their path relative to it (``app.js``)."""
    files: dict[str, StaticFile] = {}
    for name, entry in _walk(folder).items():
        media_type = MEDIA_TYPES.get(name[name.rfind("."):] if "." in name else "")
        if media_type is None:
            continue
        body = entry.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        cache_control = IMMUTABLE if name.startswith("vendor/") else NO_CACHE
        files[name] = StaticFile(body, media_type, etag, cache_control)
    return files


@cache
def static_files() -> dict[str, StaticFile]:
    """The package's dashboard files, read once per process."""
    return load_files(importlib.resources.files(__package__) / STATIC_DIR)


def security_headers(host: str | None, *, data_images: bool = False) -> dict[str, str]:
    """The headers every dashboard answer carries. The WebSocket of this very host is named
    in ``connect-src`` beside ``'self'`` for browsers whose ``'self'`` does not cover
    ``ws:``; a Host header that is not a plain host[:port] is not repeated (``'self'`` then).
    ``data_images``: ``data:`` images too (swagger-ui's stylesheet draws its icons so; the
    dashboard has none)."""
    connect = "'self'"
    if host and _HOST.fullmatch(host):
        connect += f" ws://{host} wss://{host}"
    images = "'self' data:" if data_images else "'self'"
    csp = (f"default-src 'self'; script-src 'self'; style-src 'self'; img-src {images}; "
           f"connect-src {connect}; object-src 'none'; base-uri 'none'; form-action 'self'; "
           "frame-ancestors 'none'")
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


#: the pages (and what they load) that show swagger-ui, whose icons are data: images
_DATA_IMAGES = ("docs.html", "vendor/swagger-ui-")


def serve(request: Request, name: str) -> Response:
    """One static file, or 304 when the browser's copy (``If-None-Match``) is current."""
    file = static_files().get(name)
    if file is None:
        raise NotFound(f"no such dashboard file: {STATIC_PREFIX}{name}")
    headers = security_headers(request.headers.get("host"),
                               data_images=name.startswith(_DATA_IMAGES))
    headers["Cache-Control"] = file.cache_control
    headers["ETag"] = file.etag
    if file.etag in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    body = b"" if request.method == "HEAD" else file.body
    response = Response(body, media_type=file.media_type, headers=headers)
    if request.method == "HEAD":
        response.headers["Content-Length"] = str(len(file.body))
    return response


def _etags(header: str) -> set[str]:
    if header.strip() == "*":
        return {f.etag for f in static_files().values()}
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}


@router.api_route("/", methods=["GET", "HEAD"])
async def index(request: Request) -> Response:
    """The dashboard page."""
    return serve(request, "index.html")


@router.api_route("/docs", methods=["GET", "HEAD"])
async def docs(request: Request) -> Response:
    """The API reference: swagger-ui from the package over ``/openapi.json`` (no CDN)."""
    return serve(request, "docs.html")


@router.api_route(STATIC_PREFIX + "{name:path}", methods=["GET", "HEAD"])
async def static(request: Request, name: str) -> Response:
    """The page's modules, styles and vendored files."""
    return serve(request, name)
