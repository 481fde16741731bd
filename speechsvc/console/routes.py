"""``GET /console`` (the page) and ``GET /console/assets/{name}`` (its scripts and styles).

The assets are read once from the package (they are a few tens of kilobytes) and served with an ETag; the page
carries a Content-Security-Policy that allows scripts, styles and connections to this origin only, so the console
cannot load anything from a CDN nor send data anywhere else, and it holds no data of its own: it is safe to serve
without authentication, and every request it makes for data carries the user's key.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

router = APIRouter(include_in_schema=False)

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Same-origin only: no inline script, no CDN, no frames; WebSockets to this origin ('self' covers ws/wss).
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-cache"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


@functools.lru_cache(maxsize=1)
def assets() -> dict[str, Asset]:
    """Every file of ``static/`` by name (a flat folder), read once."""
    folder = resources.files("speechsvc.console").joinpath("static")
    out = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in MEDIA_TYPES:
            body = entry.read_bytes()
            out[entry.name] = Asset(body, MEDIA_TYPES[suffix], '"' + hashlib.sha256(body).hexdigest()[:16] + '"')
    return out


def _serve(name: str, request: Request) -> Response:
    asset = assets().get(name)
    if asset is None:
        raise HTTPException(404, f"no console asset {name}")
    headers = {**HEADERS, "ETag": asset.etag}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@router.get("/console")
@router.get("/console/")
async def page(request: Request) -> Response:
    return _serve("index.html", request)


@router.get("/console/assets/{name}")
async def asset(name: str, request: Request) -> Response:
    return _serve(name, request)
