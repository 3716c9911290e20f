"""The labelling web app (Starlette): pages, labels, images and the security rules around them."""

from __future__ import annotations

import hmac
import json
import logging
import os
import urllib.parse

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ega_jax import fonts
from ega_jax.label.store import SESSION_DAYS, LabelError, Store, parse_id

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
COOKIE = "ega_session"
MAX_BODY = 256 * 1024      # a page's labels are ~10 KB
MAX_LOGIN_BODY = 4096
DRAIN = 8 * 1024 * 1024   # an oversized body up to this size is read and dropped before the 413
MAX_JSON_DEPTH = 8           # {"labels": [{"item_id": ..., "fake": ...}]} is 3 deep


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 once it passes limit bytes; never buffered beyond the limit.

    A body somewhat over the limit (up to DRAIN bytes) is read and dropped first, so the client
    gets its 413 instead of a broken pipe; a larger one is refused at once and the connection closed."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > DRAIN:
        raise LabelError(413, f"request body over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > DRAIN:
            break
        if size <= limit:
            chunks.append(chunk)
    if size > limit:
        raise LabelError(413, f"request body over {limit} bytes")
    return b"".join(chunks)


def _depth(raw: bytes) -> int:
    """Nesting depth of a JSON text, counted without parsing (so deep nesting cannot recurse)."""
    depth = deepest = 0
    in_string = escaped = False
    for c in raw.decode("utf-8", "replace"):
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth -= 1
    return deepest


def same_origin(request: Request) -> bool:
    """Whether a state-changing request comes from this site's own pages (login CSRF): browsers send
    Sec-Fetch-Site and Origin with a form POST; other clients (curl, tests) send neither."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin == "null":          # an opaque origin: only the fetch metadata can vouch for it
        return site == "same-origin"
    if origin is not None:
        own = f"{request.url.scheme}://{request.headers.get('host', '')}"
        return origin == own
    return True


def make_app(store: Store, frames: int = 20, per_model: int = 2, human: int = 2, secure_cookies: bool = False):
    def static(name: str, media: str) -> Response:
        with open(os.path.join(STATIC, name), "rb") as f:
            return Response(f.read(), media_type=media)

    if frames < 1 or per_model < 0 or human < 0:
        raise ValueError(f"--frames must be >= 1 and --per_model, --human >= 0 (got {frames}, {per_model}, {human})")

    def error(e: LabelError) -> Response:
        return JSONResponse({"error": str(e)}, status_code=e.status)

    def rater(request: Request):
        return store.session(request.cookies.get(COOKIE))

    async def body_json(request: Request) -> dict:
        # Media types are case-insensitive (RFC 9110).
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            raise LabelError(415, "send JSON (Content-Type: application/json)")
        raw = await read_body(request, MAX_BODY)
        if _depth(raw) > MAX_JSON_DEPTH:
            raise LabelError(400, f"request body nests deeper than {MAX_JSON_DEPTH} levels")
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):      # JSONDecodeError, bad UTF-8, a 5,000-digit number
            raise LabelError(400, "request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise LabelError(400, "request body must be a JSON object")
        return data

    def check_csrf(request: Request, csrf: str) -> None:
        sent = request.headers.get("x-csrf-token", "")
        if not hmac.compare_digest(sent.encode(), csrf.encode()):
            raise LabelError(403, "missing or wrong CSRF token; reload the page")

    async def index(request: Request):
        try:
            rater(request)
            return RedirectResponse("/app", status_code=303)
        except LabelError:
            return static("index.html", "text/html; charset=utf-8")

    async def invite_page(request: Request):
        return static("invite.html", "text/html; charset=utf-8")

    async def login(request: Request):
        try:
            if not same_origin(request):
                raise LabelError(403, "log in from this site's own invite page")
            raw = await read_body(request, MAX_LOGIN_BODY)
            token = urllib.parse.parse_qs(raw.decode("utf-8", "replace")).get("token", [""])[0]
            session, _ = store.login(token)
        except LabelError as e:
            # A browser that is already logged in (e.g. the invite link opened twice) goes to its page.
            if e.status == 403 and same_origin(request):
                try:
                    rater(request)
                    return RedirectResponse("/app", status_code=303)
                except LabelError:
                    pass
            return error(e)
        resp = RedirectResponse("/app", status_code=303)
        resp.set_cookie(COOKIE, session, httponly=True, samesite="strict", secure=secure_cookies, path="/",
                        max_age=SESSION_DAYS * 24 * 3600)
        return resp

    async def logout(request: Request):
        try:
            _, _, csrf = rater(request)
            check_csrf(request, csrf)
        except LabelError as e:
            return error(e)
        store.logout(request.cookies.get(COOKIE))
        resp = JSONResponse({"ok": True})
        resp.delete_cookie(COOKIE, path="/")
        return resp

    async def app_page(request: Request):
        try:
            rater(request)
        except LabelError:
            return RedirectResponse("/", status_code=303)
        return static("app.html", "text/html; charset=utf-8")

    async def api_page(request: Request):
        try:
            rid, name, csrf = rater(request)
            page_id = store.open_page(rid, frames, per_model, human)
            return JSONResponse({**store.page(rid, page_id), "csrf": csrf, "rater": name})
        except LabelError as e:
            return error(e)

    async def api_labels(request: Request):
        try:
            rid, _, _ = rater(request)
            return JSONResponse({"labels": store.labels_of(rid)})
        except LabelError as e:
            return error(e)

    async def api_submit(request: Request):
        try:
            rid, _, csrf = rater(request)
            check_csrf(request, csrf)
            page_id = parse_id(request.path_params["page_id"])
            if page_id is None:
                raise LabelError(404, "no such page")
            data = await body_json(request)
            labels = data.get("labels")
            if not isinstance(labels, list) or not labels:
                raise LabelError(400, "'labels' must be a non-empty list of {item_id, fake}")
            parsed: dict[str, bool] = {}
            for x in labels:
                if (not isinstance(x, dict) or type(x.get("item_id")) is not str or len(x["item_id"]) > 64
                        or type(x.get("fake")) is not bool):
                    raise LabelError(400, "each label is {\"item_id\": the item's id string, \"fake\": true|false}")
                if x["item_id"] in parsed:
                    raise LabelError(400, f"item {x['item_id']} labelled twice in one request")
                parsed[x["item_id"]] = x["fake"]
            return JSONResponse({"saved": store.submit(rid, page_id, parsed), "page_id": page_id})
        except LabelError as e:
            return error(e)

    async def cjk_font(request: Request):
        # For raters whose system has no Chinese font (CSS lists the usual local ones first, and
        # unicode-range means only such browsers download it).
        path = fonts.noto_cjk_otf()
        if not path:
            return error(LabelError(404, "no CJK font installed (pip install mplfonts)"))
        resp = FileResponse(path, media_type="font/otf")
        resp.headers["X-Cache"] = "public"
        return resp

    async def image(request: Request):
        try:
            rid, _, _ = rater(request)
            page_id, frame = parse_id(request.path_params["page_id"]), parse_id(request.path_params["frame"])
            if page_id is None or frame is None:
                raise LabelError(404, "no such image")
            return FileResponse(store.image_of(rid, page_id, frame))
        except LabelError as e:
            return error(e)

    class SecurityHeaders(BaseHTTPMiddleware):
        async def dispatch(self, request, call_next):
            try:
                resp = await call_next(request)
            except Exception:   # a bug: answer 500 as JSON, with the same headers as every response
                logging.getLogger(__name__).exception("labelling app: %s %s", request.method, request.url.path)
                resp = JSONResponse({"error": "internal error; the server log has the details"}, status_code=500)
            resp.headers["Content-Security-Policy"] = (
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
                "connect-src 'self'; "
                "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
            resp.headers["X-Content-Type-Options"] = "nosniff"
            # Keeps invite tokens out of Referer to other sites; same-origin requests keep their Origin.
            resp.headers["Referrer-Policy"] = "same-origin"
            resp.headers["X-Frame-Options"] = "DENY"
            cacheable = resp.headers.get("X-Cache") == "public"
            if "X-Cache" in resp.headers:
                del resp.headers["X-Cache"]
            resp.headers["Cache-Control"] = "public, max-age=86400" if cacheable else "no-store"
            return resp

    routes = [
        Route("/", index), Route("/invite/{token}", invite_page), Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]), Route("/app", app_page),
        Route("/static/app.js", lambda r: static("app.js", "text/javascript; charset=utf-8")),
        Route("/static/invite.js", lambda r: static("invite.js", "text/javascript; charset=utf-8")),
        Route("/static/app.css", lambda r: static("app.css", "text/css; charset=utf-8")),
        Route("/static/cjk.otf", cjk_font),
        Route("/api/page", api_page), Route("/api/labels", api_labels),
        Route("/api/page/{page_id}/labels", api_submit, methods=["POST"]),
        Route("/img/{page_id}/{frame}", image),
    ]
    return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])
