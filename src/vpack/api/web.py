"""The web UI: the built single-page app from web/dist at `/`, never in the way of `/api`."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.types import Receive, Scope, Send

# The repository's web/dist (src/vpack/api/web.py -> the repository root is three folders up).
DEFAULT_DIST = Path(__file__).resolve().parents[3] / "web" / "dist"

# Scripts and styles come only from this origin; the page may not be framed (clickjacking).
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# Vite names bundles after their content hash: a changed file gets a new name.
_IMMUTABLE = "public, max-age=31536000, immutable"


def _not_built(dist: Path) -> HTMLResponse:
    where = html.escape(str(dist))
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>VPACK Sources</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto; line-height: 1.5">
<h1>The web UI has not been built</h1>
<p>The service is running: its API is at <a href="/api/docs">/api/docs</a>.
To get the web UI, build it once with <code>make web</code> (or
<code>npm ci &amp;&amp; npm run build</code> in <code>web/</code>), then reload this page.
<code>make run</code> does this for you.</p>
<p>Looked for: <code>{where}/index.html</code></p>
</body></html>"""
    return HTMLResponse(body, status_code=503, headers=_PAGE_HEADERS)


def _inside(dist: Path, relative: str) -> Path | None:
    """The file `relative` names inside `dist`, or None (missing, a folder, or outside)."""
    candidate = (dist / relative).resolve()
    if dist not in candidate.parents or not candidate.is_file():
        return None
    return candidate


def mount_web(app: FastAPI, dist: Path | None = None) -> None:
    """Serve the SPA where no API route matched; other paths get index.html (client routes).

    It is the router's fallback, not a route: API routes always win, a wrong
    method on an API path still answers 405, and unknown `/api/...` paths answer
    the API's JSON 404, never the app's page.
    """
    root = (dist or DEFAULT_DIST).resolve()
    api_not_found = app.router.default

    async def web_ui(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or path == "/api"
            or path.startswith("/api/")
        ):
            await api_not_found(scope, receive, send)
            return
        await _page(root, path.lstrip("/"))(scope, receive, send)

    app.router.default = web_ui


def _page(root: Path, path: str) -> Response:
    index = root / "index.html"
    if not index.is_file():
        return _not_built(root)
    asset = _inside(root, path) if path else None
    if asset is not None and asset != index:
        immutable = asset.parent.name == "assets"
        return FileResponse(
            asset, headers={"Cache-Control": _IMMUTABLE if immutable else "no-cache"}
        )
    if "." in path.rsplit("/", 1)[-1]:
        # A missing file (say, a bundle of an older build) is a 404, not the page: a script
        # answered with HTML fails confusingly, a 404 says what happened.
        return Response("not found", status_code=404, media_type="text/plain")
    # The page itself is always revalidated, so a new build shows at once.
    return FileResponse(index, headers={**_PAGE_HEADERS, "Cache-Control": "no-cache"})
