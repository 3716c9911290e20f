"""One results file for every benchmark: benchmarks/results.json, rendered to RESULTS.md.

Each benchmark replaces its own section, so re-running one keeps the others.
"""

from __future__ import annotations

import datetime
import json
import os
import platform

HERE = os.path.dirname(os.path.abspath(__file__))
JSON_PATH = os.path.join(HERE, "results.json")
MD_PATH = os.path.join(HERE, "RESULTS.md")


def machine() -> str:
    try:
        import jax
        devices = f"{jax.default_backend()} x{jax.device_count()}"
    except Exception:  # noqa: BLE001 - a benchmark without jax still records where it ran
        devices = "no jax"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, {devices}"


def record(section: str, table_header: list[str], rows: list[list], notes: str = "") -> None:
    data = json.load(open(JSON_PATH)) if os.path.exists(JSON_PATH) else {}
    data[section] = {"date": datetime.date.today().isoformat(), "machine": machine(),
                     "header": table_header, "rows": rows, "notes": notes}
    with open(JSON_PATH, "w") as f:
        json.dump(data, f, indent=1, ensure_ascii=False)
    lines = ["# Benchmark results", "", "Written by the scripts in this folder; do not edit by hand.", ""]
    for name, s in sorted(data.items()):
        lines += [f"## {name}", "", f"{s['date']}, {s['machine']}", ""]
        if s["notes"]:
            lines += [s["notes"], ""]
        lines += ["| " + " | ".join(s["header"]) + " |", "|" + "---|" * len(s["header"])]
        lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in s["rows"]] + [""]
    with open(MD_PATH, "w") as f:
        f.write("\n".join(lines))
    print(f"results: {MD_PATH}")
