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

Modules: ``store`` (the SQLite database: samples, raters, sessions, pages, labels),
``stats`` (Wilson intervals, Fleiss' kappa, the results table and CSV), ``app`` (the
Starlette web app and its security rules), ``static/`` (the page, script and style),
``simulate`` (loopback server, rater client and load simulation shared by the tests and
the load benchmark) and ``__main__`` (the command line).
"""
