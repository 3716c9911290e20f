"""The labelling web app (Starlette): pages, labels, images and the security rules around them."""

from __future__ import annotations

import hmac
import json
import os
import urllib.parse

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ega_jax import fonts
from ega_jax.label.store import LabelError, Store

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
COOKIE = "ega_session"
MAX_BODY = 256 * 1024


def make_app(store: Store, frames: int = 20, per_model: int = 2, human: int = 2, secure_cookies: bool = False):
    def static(name: str, media: str) -> Response:
        with open(os.path.join(STATIC, name), "rb") as f:
            return Response(f.read(), media_type=media)

    def error(e: LabelError) -> Response:
        return JSONResponse({"error": str(e)}, status_code=e.status)

    def rater(request: Request):
        return store.session(request.cookies.get(COOKIE))

    async def body_json(request: Request) -> dict:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise LabelError(415, "send JSON (Content-Type: application/json)")
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise LabelError(413, f"request body over {MAX_BODY} bytes")
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
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
        raw = await request.body()
        if len(raw) > 4096:
            return error(LabelError(413, "request body too large"))
        token = urllib.parse.parse_qs(raw.decode("utf-8", "replace")).get("token", [""])[0]
        try:
            session, _ = store.login(token)
        except LabelError as e:
            return error(e)
        resp = RedirectResponse("/app", status_code=303)
        resp.set_cookie(COOKIE, session, httponly=True, samesite="strict", secure=secure_cookies, path="/",
                        max_age=30 * 24 * 3600)
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
            try:
                page_id = int(request.path_params["page_id"])
            except ValueError:
                raise LabelError(404, "no such page") from None
            data = await body_json(request)
            labels = data.get("labels")
            if not isinstance(labels, list) or not labels:
                raise LabelError(400, "'labels' must be a non-empty list of {item_id, fake}")
            parsed: dict[int, bool] = {}
            for x in labels:
                if (not isinstance(x, dict) or type(x.get("item_id")) is not int or type(x.get("fake")) is not bool):
                    raise LabelError(400, "each label is {\"item_id\": integer, \"fake\": true|false}")
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
            return FileResponse(store.image_of(rid, int(request.path_params["page_id"]),
                                               int(request.path_params["frame"])))
        except LabelError as e:
            return error(e)

    class SecurityHeaders(BaseHTTPMiddleware):
        async def dispatch(self, request, call_next):
            resp = await call_next(request)
            resp.headers["Content-Security-Policy"] = (
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
                "connect-src 'self'; "
                "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
            resp.headers["X-Content-Type-Options"] = "nosniff"
            resp.headers["Referrer-Policy"] = "no-referrer"       # keeps invite tokens out of Referer
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
        Route("/img/{page_id:int}/{frame:int}", image),
    ]
    return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])
