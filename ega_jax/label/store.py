"""The labels database (SQLite, WAL): samples, raters, sessions, pages and labels."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import secrets
import sqlite3
import time

from ega_jax.label.stats import fleiss_kappa, wilson

DB_NAME = "labels.sqlite"

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
  frame_pos INTEGER NOT NULL, pos INTEGER NOT NULL, token TEXT, PRIMARY KEY (page_id, item_id));
CREATE TABLE IF NOT EXISTS labels (
  rater_id INTEGER NOT NULL REFERENCES raters (id), item_id INTEGER NOT NULL REFERENCES items (id),
  page_id INTEGER NOT NULL REFERENCES pages (id), fake INTEGER NOT NULL CHECK (fake IN (0, 1)),
  updated REAL NOT NULL, PRIMARY KEY (rater_id, item_id));
"""


SESSION_DAYS = 30          # a session expires this long after login
ID = re.compile(r"[0-9]{1,18}")          # page ids in URLs: anything else is no page (and no OverflowError)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")


def parse_id(text) -> int | None:
    """A page id from a URL, or None: digits only, within SQLite's integer range."""
    return int(text) if isinstance(text, str) and ID.fullmatch(text) else None


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
    rows, images = [], {}
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
            _check_image(path, n, r["image"])
            if images.setdefault(r["keyframe_id"], r["image"]) != r["image"]:
                raise ValueError(f"{path}:{n}: key frame {r['keyframe_id']!r} names image {r['image']!r}, but an "
                                 f"earlier line names {images[r['keyframe_id']]!r}; one image per key frame")
            rows.append(r)
    if not rows:
        raise ValueError(f"{path}: no samples")
    return rows


def _check_image(samples_path: str, line: int, image: str) -> None:
    """An image named by the samples file must be an image file inside the samples file's folder."""
    base = os.path.realpath(os.path.dirname(os.path.abspath(samples_path)))
    full = os.path.realpath(os.path.join(base, image))
    if os.path.commonpath([base, full]) != base:
        raise ValueError(f"{samples_path}:{line}: image {image!r} is outside {base}")
    if not full.lower().endswith(IMAGE_SUFFIXES) or not os.path.isfile(full):
        raise ValueError(f"{samples_path}:{line}: image {image!r} is not an image file "
                         f"({', '.join(IMAGE_SUFFIXES)}) in {base}")


def _item_token() -> str:
    """A page's name for one of its comments: random, so it says nothing about the model behind it
    (a letter first, so it is never mistaken for a number)."""
    return "i" + secrets.token_hex(8)


def _unwritable(e: Exception) -> "LabelError":
    # A full disk or a database made read-only while serving: say so, as a 503.
    return LabelError(503, f"the labels database cannot be written ({e}); tell the person running this study")


class Store:
    """The labels database. One connection per call, so it is safe from any thread or process."""

    def __init__(self, path: str):
        self.path = path
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"no workdir {folder}")
        try:
            with self._connect() as db:
                db.executescript(SCHEMA)
            # BEGIN IMMEDIATE takes the write lock: a database that cannot be written fails here, at start.
            with self._tx() as db:
                # Databases made before per-page item tokens: add them (the study's blinding).
                if "token" not in [r[1] for r in db.execute("PRAGMA table_info(page_items)")]:
                    db.execute("ALTER TABLE page_items ADD COLUMN token TEXT")
                for page, item in db.execute("SELECT page_id, item_id FROM page_items WHERE token IS NULL").fetchall():
                    db.execute("UPDATE page_items SET token = ? WHERE page_id = ? AND item_id = ?",
                               (_item_token(), page, item))
                db.execute("CREATE UNIQUE INDEX IF NOT EXISTS page_tokens ON page_items (page_id, token)")
        except (sqlite3.OperationalError, LabelError) as e:
            raise PermissionError(f"cannot write the labels database {path}: {e}") from None

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
                try:
                    self.db.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as e:
                    self.db.close()
                    raise _unwritable(e) from e
                return self.db

            def __exit__(self, exc_type, exc, _tb):
                try:
                    self.db.execute("ROLLBACK" if exc_type else "COMMIT")
                except sqlite3.OperationalError as e:
                    exc = exc or e
                finally:
                    self.db.close()
                if isinstance(exc, sqlite3.OperationalError):
                    raise _unwritable(exc) from exc

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
            # A new invite replaces the old one and ends the rater's old sessions (a leaked link or cookie).
            db.execute("DELETE FROM sessions WHERE rater_id = (SELECT id FROM raters WHERE name = ?)", (name,))
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
                              "WHERE s.token_hash = ? AND s.created > ?",
                              (_hash(token), time.time() - SESSION_DAYS * 86400))
            if rows:
                return rows[0]
        raise LabelError(401, "not logged in: open your invite link")

    def revoke(self, name: str) -> int:
        """Ends every session of a rater and voids an unused invite; returns the sessions ended."""
        with self._tx() as db:
            row = db.execute("SELECT id FROM raters WHERE name = ?", (name.strip(),)).fetchone()
            if not row:
                raise ValueError(f"no rater named {name!r}")
            n = db.execute("DELETE FROM sessions WHERE rater_id = ?", (row[0],)).rowcount
            db.execute("UPDATE raters SET invite_hash = NULL WHERE id = ?", (row[0],))
        return n

    def logout(self, token: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE token_hash = ?", (_hash(token),))

    # -- pages and labels ---------------------------------------------------------------------
    def open_page(self, rater_id: int, frames: int = 20, per_model: int = 2, human: int = 2,
                  seed: int | None = None) -> int:
        """The rater's unsubmitted page, or a new one: `frames` random key frames, each with
        `per_model` comments of every model and `human` human ones, shuffled."""
        if frames < 1 or per_model < 0 or human < 0:
            raise ValueError(f"a page needs frames >= 1, per_model >= 0, human >= 0 (got {frames}, {per_model}, "
                             f"{human})")
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
                # The page shows random per-page tokens, never item ids: ids follow the samples file's
                # order (model by model), which would unblind the study.
                rows += [(page, i, f, p, _item_token()) for p, i in enumerate(chosen)]
            db.executemany("INSERT INTO page_items (page_id, item_id, frame_pos, pos, token) VALUES (?, ?, ?, ?, ?)",
                           rows)
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
            rows = db.execute("SELECT pi.frame_pos, pi.token, i.comment, i.keyframe_id, l.fake FROM page_items pi "
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

    def submit(self, rater_id: int, page_id: int, labels: dict[str, bool]) -> int:
        """Labels for every comment of the page (fake or not), keyed by the page's item tokens.
        Re-submitting replaces them."""
        with self._tx() as db:
            self._own_page(db, rater_id, page_id)
            item_of = dict(db.execute("SELECT token, item_id FROM page_items WHERE page_id = ?", (page_id,)))
            on_page = set(item_of)
            if set(labels) != on_page:
                extra, missing = set(labels) - on_page, on_page - set(labels)
                raise LabelError(400, f"labels must cover exactly the {len(on_page)} comments of page {page_id}"
                                      + (f"; not on this page: {sorted(extra)[:5]}" if extra else "")
                                      + (f"; missing: {len(missing)}" if missing else ""))
            now = time.time()
            db.executemany("INSERT INTO labels VALUES (?, ?, ?, ?, ?) ON CONFLICT (rater_id, item_id) DO UPDATE SET "
                           "fake = excluded.fake, page_id = excluded.page_id, updated = excluded.updated",
                           [(rater_id, item_of[t], page_id, int(f), now) for t, f in labels.items()])
            db.execute("UPDATE pages SET submitted = ? WHERE id = ?", (now, page_id))
        return len(labels)

    def labels_of(self, rater_id: int) -> list[dict]:
        rows = self._read("SELECT pi.token, l.page_id, l.fake FROM labels l JOIN page_items pi ON "
                          "pi.page_id = l.page_id AND pi.item_id = l.item_id WHERE l.rater_id = ? ORDER BY pi.token",
                          (rater_id,))
        return [{"item_id": t, "page_id": p, "fake": bool(f)} for t, p, f in rows]

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
