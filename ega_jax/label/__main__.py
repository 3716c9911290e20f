"""The labelling app's command line: serve, invite, results (see ega_jax/label/__init__.py)."""

from __future__ import annotations

import argparse
import os
import sys

from ega_jax.label.stats import results_text, write_results_csv
from ega_jax.label.store import Store, db_path, default_samples


def main(argv: list[str]) -> int:
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
    v = sub.add_parser("revoke", help="log a rater out everywhere and void their unused invite")
    v.add_argument("--workdir", required=True)
    v.add_argument("name")
    args = p.parse_args(argv)
    if args.command == "serve" and (args.frames < 1 or args.per_model < 0 or args.human < 0):
        p.error("--frames must be >= 1 and --per_model, --human >= 0")
    store = Store(db_path(args.workdir))
    if args.command == "serve":
        # The web app's dependencies (the label extra) are needed to serve, not to invite or read results.
        import uvicorn

        from ega_jax.label.app import make_app
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
    elif args.command == "revoke":
        n = store.revoke(args.name)
        print(f"revoked {args.name}: {n} session(s) ended, any unused invite voided; "
              f"python -m ega_jax.label invite --workdir={args.workdir} {args.name} gives a new link")
    else:
        res = store.results()
        if not res["models"]:
            print(f"no labels yet in {store.path}")
            return 1
        print(results_text(res))
        out = os.path.join(args.workdir, "evaluation", "human_recall.csv")
        write_results_csv(res, out)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (FileNotFoundError, PermissionError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
