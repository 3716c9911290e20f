r"""Human Recall (paper 3.2): a labelling web app for many raters.

  python -m ega_jax.label serve   --workdir=W [--port=8000] [--samples=FILE]
  python -m ega_jax.label invite  --workdir=W NAME [--base_url=http://127.0.0.1:8000]
  python -m ega_jax.label results --workdir=W

A rater opens their one-time invite link, logs in, and gets a page of 20 random test key frames.
Each frame shows comments flying over it as danmaku and as a list; the comments are a few from
every model mixed with a few real human comments of that frame, shuffled, with no model names.
The rater clicks the ones they think are fake and submits; the others count as escaped. Human
Recall of a model = escaped / labelled over its comments; the human comments' escape rate is
the ceiling. ``results`` prints recall per model with a 95% Wilson interval, Fleiss' kappa and
per-rater counts, and writes W/evaluation/human_recall.csv (``ega_jax.evaluate`` adds the column).

Input: the samples file, JSON lines {"keyframe_id", "image" (relative to the file), "model",
"comment"}; W/evaluation/samples.jsonl (written by ega_jax.evaluate, with "human" rows) or else
W/generated/samples.jsonl (the main job's). Storage: W/labels.sqlite (WAL; one label per rater
and comment, so a re-submitted page replaces, never adds).

Safety: comment text is untrusted; the page puts it into the DOM with textContent only, under a
Content-Security-Policy that allows no inline script. Sessions are random tokens (only their
SHA-256 is stored) in an HttpOnly, SameSite=Strict cookie; every state-changing request must
carry the session's CSRF token; every query is parameterised and scoped to the logged-in rater.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import math
import os
import random
import secrets
import sqlite3
import sys
import time
import urllib.parse

from ega_jax import fonts

DB_NAME = "labels.sqlite"
STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "label_static")
COOKIE = "ega_session"
MAX_BODY = 256 * 1024

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
  id INTEGER PRIMARY KEY, keyframe_id TEXT NOT NULL, image TEXT NOT NULL, model TEXT NOT NULL, comment TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS items_by_frame ON items (keyframe_id);
CREATE TABLE IF NOT EXISTS raters (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, invite_hash TEXT UNIQUE, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
  token_hash TEXT PRIMARY KEY, rater_id INTEGER NOT NULL REFERENCES raters (id), csrf TEXT NOT NULL,
  created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS pages (
  id INTEGER PRIMARY KEY, rater_id INTEGER NOT NULL REFERENCES raters (id), created REAL NOT NULL, submitted REAL);
CREATE TABLE IF NOT EXISTS page_items (
  page_id INTEGER NOT NULL REFERENCES pages (id), item_id INTEGER NOT NULL REFERENCES items (id),
  frame_pos INTEGER NOT NULL, pos INTEGER NOT NULL, PRIMARY KEY (page_id, item_id));
CREATE TABLE IF NOT EXISTS labels (
  rater_id INTEGER NOT NULL REFERENCES raters (id), item_id INTEGER NOT NULL REFERENCES items (id),
  page_id INTEGER NOT NULL REFERENCES pages (id), fake INTEGER NOT NULL CHECK (fake IN (0, 1)),
  updated REAL NOT NULL, PRIMARY KEY (rater_id, item_id));
"""


class LabelError(Exception):
    """A request the app refuses; status is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def db_path(workdir: str) -> str:
    return os.path.join(workdir, DB_NAME)


def default_samples(workdir: str) -> str:
    for p in (os.path.join(workdir, "evaluation", "samples.jsonl"), os.path.join(workdir, "generated", "samples.jsonl")):
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"no samples file in {workdir}: run python -m ega_jax.evaluate --workdir={workdir} "
                            "(writes evaluation/samples.jsonl) or the main job (generated/samples.jsonl)")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def read_samples(path: str) -> list[dict]:
    """The samples file, checked line by line (a bad line is an error naming the file and line)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not JSON ({e})") from None
            if not isinstance(r, dict):
                raise ValueError(f"{path}:{n}: expected an object")
            for k in ("keyframe_id", "image", "model", "comment"):
                if not isinstance(r.get(k), str):
                    raise ValueError(f"{path}:{n}: field {k!r} missing or not a string")
            rows.append(r)
    if not rows:
        raise ValueError(f"{path}: no samples")
    return rows


class Store:
    """The labels database. One connection per call, so it is safe from any thread or process."""

    def __init__(self, path: str):
        self.path = path
        with self._connect() as db:
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=30000")
        return db

    def _tx(self):
        """A write transaction that takes the write lock up front (no upgrade deadlocks)."""
        store = self

        class _T:
            def __enter__(self):
                self.db = store._connect()
                self.db.execute("BEGIN IMMEDIATE")
                return self.db

            def __exit__(self, exc_type, *_):
                self.db.execute("ROLLBACK" if exc_type else "COMMIT")
                self.db.close()

        return _T()

    def _read(self, sql: str, args=()) -> list[tuple]:
        db = self._connect()
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    # -- samples ------------------------------------------------------------------------------
    def import_samples(self, path: str) -> int:
        """Loads the samples once; the same database refuses a different samples file."""
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        rows = read_samples(path)
        with self._tx() as db:
            have = db.execute("SELECT value FROM meta WHERE key = 'samples_sha256'").fetchone()
            if have and have[0] != digest:
                raise ValueError(f"{self.path} holds labels of another samples file than {path}; "
                                 "use a new workdir (or move labels.sqlite away) to label new samples")
            if not have:
                db.executemany("INSERT INTO items (keyframe_id, image, model, comment) VALUES (?, ?, ?, ?)",
                               [(r["keyframe_id"], r["image"], r["model"], r["comment"]) for r in rows])
                db.execute("INSERT INTO meta VALUES ('samples_sha256', ?)", (digest,))
                db.execute("INSERT INTO meta VALUES ('samples_dir', ?)", (os.path.dirname(os.path.abspath(path)),))
        return len(rows)

    def samples_dir(self) -> str:
        rows = self._read("SELECT value FROM meta WHERE key = 'samples_dir'")
        return rows[0][0] if rows else ""

    # -- raters and sessions ------------------------------------------------------------------
    def invite(self, name: str) -> str:
        name = name.strip()
        if not name or len(name) > 64 or any(ord(c) < 32 for c in name):
            raise ValueError("a rater name is 1-64 printable characters")
        token = secrets.token_urlsafe(32)
        with self._tx() as db:
            db.execute("INSERT INTO raters (name, invite_hash, created) VALUES (?, ?, ?) "
                       "ON CONFLICT (name) DO UPDATE SET invite_hash = excluded.invite_hash",
                       (name, _hash(token), time.time()))
        return token

    def login(self, invite_token: str) -> tuple[str, str]:
        """A one-time invite token -> (session token, CSRF token)."""
        session, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._tx() as db:
            row = db.execute("SELECT id FROM raters WHERE invite_hash = ?", (_hash(invite_token),)).fetchone()
            if not row:
                raise LabelError(403, "this invite link is invalid or was already used; ask for a new one")
            db.execute("UPDATE raters SET invite_hash = NULL WHERE id = ?", (row[0],))
            db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)", (_hash(session), row[0], csrf, time.time()))
        return session, csrf

    def session(self, token: str | None) -> tuple[int, str, str]:
        """(rater id, name, CSRF token) of a session cookie."""
        if token:
            rows = self._read("SELECT r.id, r.name, s.csrf FROM sessions s JOIN raters r ON r.id = s.rater_id "
                              "WHERE s.token_hash = ?", (_hash(token),))
            if rows:
                return rows[0]
        raise LabelError(401, "not logged in: open your invite link")

    def logout(self, token: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE token_hash = ?", (_hash(token),))

    # -- pages and labels ---------------------------------------------------------------------
    def open_page(self, rater_id: int, frames: int = 20, per_model: int = 2, human: int = 2,
                  seed: int | None = None) -> int:
        """The rater's unsubmitted page, or a new one: `frames` random key frames, each with
        `per_model` comments of every model and `human` human ones, shuffled."""
        rng = random.Random(seed if seed is not None else secrets.randbits(64))
        with self._tx() as db:
            row = db.execute("SELECT id FROM pages WHERE rater_id = ? AND submitted IS NULL ORDER BY id LIMIT 1",
                             (rater_id,)).fetchone()
            if row:
                return row[0]
            items = db.execute("SELECT id, keyframe_id, model FROM items ORDER BY id").fetchall()
            by_frame: dict[str, dict[str, list[int]]] = {}
            for i, k, m in items:
                by_frame.setdefault(k, {}).setdefault(m, []).append(i)
            keys = rng.sample(sorted(by_frame), min(frames, len(by_frame)))
            page = db.execute("INSERT INTO pages (rater_id, created) VALUES (?, ?)", (rater_id, time.time())).lastrowid
            rows = []
            for f, k in enumerate(keys):
                chosen = []
                for m, ids in sorted(by_frame[k].items()):
                    chosen += rng.sample(ids, min(human if m == "human" else per_model, len(ids)))
                rng.shuffle(chosen)
                rows += [(page, i, f, p) for p, i in enumerate(chosen)]
            db.executemany("INSERT INTO page_items VALUES (?, ?, ?, ?)", rows)
        return page

    def _own_page(self, db, rater_id: int, page_id: int) -> None:
        row = db.execute("SELECT rater_id FROM pages WHERE id = ?", (page_id,)).fetchone()
        # Someone else's page and a missing one answer the same: nothing to learn by probing.
        if not row or row[0] != rater_id:
            raise LabelError(404, f"no page {page_id} of yours")

    def page(self, rater_id: int, page_id: int) -> dict:
        db = self._connect()
        try:
            self._own_page(db, rater_id, page_id)
            rows = db.execute("SELECT pi.frame_pos, pi.item_id, i.comment, i.keyframe_id, l.fake FROM page_items pi "
                              "JOIN items i ON i.id = pi.item_id LEFT JOIN labels l ON l.item_id = pi.item_id "
                              "AND l.rater_id = ? WHERE pi.page_id = ? ORDER BY pi.frame_pos, pi.pos",
                              (rater_id, page_id)).fetchall()
        finally:
            db.close()
        frames: list[dict] = []
        for f, item, text, key, fake in rows:
            if len(frames) <= f:
                frames.append({"image": f"/img/{page_id}/{f}", "items": []})
            frames[f]["items"].append({"id": item, "text": text, "fake": bool(fake) if fake is not None else None})
        return {"page_id": page_id, "frames": frames}

    def image_of(self, rater_id: int, page_id: int, frame_pos: int) -> str:
        db = self._connect()
        try:
            self._own_page(db, rater_id, page_id)
            row = db.execute("SELECT i.image FROM page_items pi JOIN items i ON i.id = pi.item_id "
                             "WHERE pi.page_id = ? AND pi.frame_pos = ? LIMIT 1", (page_id, frame_pos)).fetchone()
        finally:
            db.close()
        if not row:
            raise LabelError(404, f"page {page_id} has no frame {frame_pos}")
        base = os.path.realpath(self.samples_dir())
        path = os.path.realpath(os.path.join(base, row[0]))
        if os.path.commonpath([base, path]) != base or not os.path.isfile(path):
            raise LabelError(404, "image not found")
        return path

    def submit(self, rater_id: int, page_id: int, labels: dict[int, bool]) -> int:
        """Labels for every comment of the page (fake or not). Re-submitting replaces them."""
        with self._tx() as db:
            self._own_page(db, rater_id, page_id)
            on_page = {r[0] for r in db.execute("SELECT item_id FROM page_items WHERE page_id = ?", (page_id,))}
            if set(labels) != on_page:
                extra, missing = set(labels) - on_page, on_page - set(labels)
                raise LabelError(400, f"labels must cover exactly the {len(on_page)} comments of page {page_id}"
                                      + (f"; not on this page: {sorted(extra)[:5]}" if extra else "")
                                      + (f"; missing: {len(missing)}" if missing else ""))
            now = time.time()
            db.executemany("INSERT INTO labels VALUES (?, ?, ?, ?, ?) ON CONFLICT (rater_id, item_id) DO UPDATE SET "
                           "fake = excluded.fake, page_id = excluded.page_id, updated = excluded.updated",
                           [(rater_id, i, page_id, int(f), now) for i, f in labels.items()])
            db.execute("UPDATE pages SET submitted = ? WHERE id = ?", (now, page_id))
        return len(labels)

    def labels_of(self, rater_id: int) -> list[dict]:
        rows = self._read("SELECT item_id, page_id, fake FROM labels WHERE rater_id = ? ORDER BY item_id", (rater_id,))
        return [{"item_id": i, "page_id": p, "fake": bool(f)} for i, p, f in rows]

    # -- results ------------------------------------------------------------------------------
    def results(self) -> dict:
        per_model = self._read("SELECT i.model, COUNT(*), SUM(1 - l.fake) FROM labels l JOIN items i ON i.id = l.item_id "
                               "GROUP BY i.model ORDER BY i.model")
        recall = {}
        for m, n, escaped in per_model:
            lo, hi = wilson(escaped, n)
            recall[m] = {"labels": n, "escaped": escaped, "recall": escaped / n, "ci_low": lo, "ci_high": hi}
        per_item: dict[int, list[int]] = {}
        for item, fake in self._read("SELECT item_id, fake FROM labels"):
            per_item.setdefault(item, [0, 0])[fake] += 1
        raters = self._read("SELECT r.name, COUNT(l.item_id), COALESCE(SUM(l.fake), 0), "
                            "(SELECT COUNT(*) FROM pages p WHERE p.rater_id = r.id AND p.submitted IS NOT NULL) "
                            "FROM raters r LEFT JOIN labels l ON l.rater_id = r.id GROUP BY r.id ORDER BY r.name")
        return {"models": recall, "kappa": fleiss_kappa(list(per_item.values())),
                "items_with_2_or_more_raters": sum(sum(c) >= 2 for c in per_item.values()),
                "raters": [{"name": n, "labels": c, "fake": f, "pages": p} for n, c, f, p in raters]}


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


def fleiss_kappa(counts: list[list[int]]) -> float:
    """Fleiss' kappa from per-item category counts, items with >= 2 ratings only.

    With the same number of ratings per item this is Fleiss (1971); with varying numbers each
    item's agreement uses its own n_i (the usual generalisation)."""
    counts = [c for c in counts if sum(c) >= 2]
    if not counts:
        return float("nan")
    p_items = [(sum(x * x for x in c) - sum(c)) / (sum(c) * (sum(c) - 1)) for c in counts]
    total = sum(sum(c) for c in counts)
    p_cat = [sum(c[j] for c in counts) / total for j in range(len(counts[0]))]
    p_bar, p_e = sum(p_items) / len(p_items), sum(p * p for p in p_cat)
    return (p_bar - p_e) / (1 - p_e) if p_e < 1 else float("nan")


def recall_by_model(workdir: str) -> dict:
    return Store(db_path(workdir)).results()["models"]


# ---------------------------------------------------------------------------------------------
# The web app


def make_app(store: Store, frames: int = 20, per_model: int = 2, human: int = 2, secure_cookies: bool = False):
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
    from starlette.routing import Route

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


# ---------------------------------------------------------------------------------------------
# Command line


def _results_text(res: dict) -> str:
    lines = ["model        labels  escaped  human recall  95% interval"]
    for m, r in sorted(res["models"].items(), key=lambda kv: (kv[0] == "human", kv[0])):
        name = "human (ceiling)" if m == "human" else m
        lines.append(f"{name:<15}{r['labels']:>5} {r['escaped']:>8}  {r['recall']:>12.3f}  "
                     f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]")
    lines.append(f"Fleiss' kappa {res['kappa']:.3f} over {res['items_with_2_or_more_raters']} comments with 2+ raters"
                 if not math.isnan(res["kappa"]) else "Fleiss' kappa: no comment has two raters yet")
    lines.append("raters: " + ", ".join(f"{r['name']} ({r['labels']} labels, {r['pages']} pages)"
                                        for r in res["raters"]))
    return "\n".join(lines)


def write_results_csv(res: dict, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["model", "labels", "escaped", "human_recall", "ci_low", "ci_high"])
        for m, r in sorted(res["models"].items()):
            w.writerow([m, r["labels"], r["escaped"], r["recall"], r["ci_low"], r["ci_high"]])


USAGE = __doc__.split("\n\n")[0]


def main(argv: list[str]) -> int:
    import argparse
    p = argparse.ArgumentParser(prog="python -m ega_jax.label", description="Human Recall labelling app.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the app on localhost")
    s.add_argument("--workdir", required=True)
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    s.add_argument("--samples", default="", help="samples file (default: W/evaluation/samples.jsonl, "
                                                  "else W/generated/samples.jsonl)")
    s.add_argument("--frames", type=int, default=20, help="key frames per page (20 in the paper)")
    s.add_argument("--per_model", type=int, default=2, help="comments of each model per frame")
    s.add_argument("--human", type=int, default=2, help="real human comments per frame")
    s.add_argument("--secure_cookies", action="store_true", help="mark cookies Secure (behind HTTPS)")
    i = sub.add_parser("invite", help="print a one-time login link for a rater")
    i.add_argument("--workdir", required=True)
    i.add_argument("name")
    i.add_argument("--base_url", default="http://127.0.0.1:8000")
    r = sub.add_parser("results", help="print Human Recall per model and write CSV")
    r.add_argument("--workdir", required=True)
    args = p.parse_args(argv)
    store = Store(db_path(args.workdir))
    if args.command == "serve":
        import uvicorn
        samples = args.samples or default_samples(args.workdir)
        n = store.import_samples(samples)
        print(f"label: {n} samples from {samples}; database {store.path}; "
              f"invite raters with python -m ega_jax.label invite --workdir={args.workdir} NAME "
              f"--base_url=http://{args.host}:{args.port}")
        uvicorn.run(make_app(store, args.frames, args.per_model, args.human, args.secure_cookies),
                    host=args.host, port=args.port, log_level="warning")
    elif args.command == "invite":
        token = store.invite(args.name)
        print(f"{args.base_url.rstrip('/')}/invite/{token}")
    else:
        res = store.results()
        if not res["models"]:
            print(f"no labels yet in {store.path}")
            return 1
        print(_results_text(res))
        out = os.path.join(args.workdir, "evaluation", "human_recall.csv")
        write_results_csv(res, out)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
