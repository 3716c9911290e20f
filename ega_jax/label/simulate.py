"""Raters on loopback: a synthetic samples file, the app on a free port, a rater's client with its own
cookie jar, and many raters at once. Shared by tests/test_label.py and benchmarks/label_load_bench.py."""

from __future__ import annotations

import concurrent.futures
import http.cookiejar
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import uvicorn
from PIL import Image


def write_samples(root: str, frames: int = 30, models=("ega", "cvae", "encdec", "simple_gan"), per_model: int = 4,
                  human: int = 4, comment=lambda f, m, k: f"{m} comment {k} of frame {f}") -> str:
    """A synthetic samples.jsonl (+ frame PNGs) shaped like ega_jax.evaluate's."""
    os.makedirs(os.path.join(root, "frames"), exist_ok=True)
    path = os.path.join(root, "samples.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for i in range(frames):
            img = f"frames/f{i:03d}.png"
            Image.fromarray(np.full((32, 32, 3), (i * 8) % 256, np.uint8)).save(os.path.join(root, img))
            for m in list(models) + ["human"]:
                for k in range(human if m == "human" else per_model):
                    f.write(json.dumps({"keyframe_id": f"v:{i}", "image": img, "model": m,
                                        "comment": comment(i, m, k)}, ensure_ascii=False) + "\n")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The app on a loopback port in a background thread."""

    def __init__(self, app):
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error",
                                                    backlog=2048))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_):
        self.server.should_exit = True
        self.thread.join(10)


class Client:
    """One rater's browser: a cookie jar, JSON calls, latencies."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.latencies: list[float] = []

    def call(self, method: str, path: str, data: bytes | None = None, headers=None):
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers or {})
        t = time.perf_counter()
        try:
            with self.opener.open(req, timeout=60) as r:
                body, status = r.read(), r.status
        except urllib.error.HTTPError as e:
            body, status = e.read(), e.code
        self.latencies.append(time.perf_counter() - t)
        return status, body

    def login(self, token: str):
        return self.call("POST", "/login", f"token={token}".encode(), {"Content-Type": "application/x-www-form-urlencoded"})

    def page(self) -> dict:
        status, body = self.call("GET", "/api/page")
        if status != 200:
            raise RuntimeError(f"GET /api/page: {status} {body[:200]!r}")
        return json.loads(body)

    def submit(self, page: dict, fake_of=lambda item: False, csrf: str | None = None):
        labels = [{"item_id": it["id"], "fake": fake_of(it)} for fr in page["frames"] for it in fr["items"]]
        return self.call("POST", f"/api/page/{page['page_id']}/labels", json.dumps({"labels": labels}).encode(),
                         {"Content-Type": "application/json", "X-CSRF-Token": page["csrf"] if csrf is None else csrf})


def simulate(base: str, store, raters: int, resubmit_every: int = 3, fake_of=lambda item: False) -> dict:
    """Every rater concurrently: login, page, submit (every k-th twice). Returns counts and timings."""
    tokens = [store.invite(f"rater{i:03d}") for i in range(raters)]

    def one(i):
        c = Client(base)
        status, _ = c.login(tokens[i])
        if status != 200:                    # the redirect to /app is followed: 200 with the app page
            raise RuntimeError(f"rater {i}: login answered {status}")
        page = c.page()
        shown = sum(len(f["items"]) for f in page["frames"])
        for _ in range(2 if resubmit_every and i % resubmit_every == 0 else 1):
            status, body = c.submit(page, fake_of)
            if status != 200 or json.loads(body)["saved"] != shown:
                raise RuntimeError(f"rater {i}: submit answered {status} {body[:200]!r}")
        return shown, c.latencies

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(raters) as pool:
        results = list(pool.map(one, range(raters)))
    wall = time.perf_counter() - t0
    lat = np.asarray([x for _, ls in results for x in ls])
    return {"raters": raters, "labels_expected": sum(s for s, _ in results), "requests": len(lat), "wall_s": wall,
            "requests_per_s": len(lat) / wall, "p50_ms": 1000 * float(np.percentile(lat, 50)),
            "p95_ms": 1000 * float(np.percentile(lat, 95)), "max_ms": 1000 * float(lat.max())}
