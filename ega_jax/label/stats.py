"""Human Recall statistics: Wilson intervals, Fleiss' kappa, the results table and its CSV."""

from __future__ import annotations

import csv
import math
import os


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


def results_text(res: dict) -> str:
    lines = ["model        labels  escaped  human recall  95% interval"]
    for m, r in sorted(res["models"].items(), key=lambda kv: (kv[0] == "human", kv[0])):
        name = "human (ceiling)" if m == "human" else m
        lines.append(f"{name:<15}{r['labels']:>5} {r['escaped']:>8}  {r['recall']:>12.3f}  "
                     f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]")
    shared = res["items_with_2_or_more_raters"]
    if not shared:
        lines.append("Fleiss' kappa: no comment has two raters yet")
    elif math.isnan(res["kappa"]):
        # Chance agreement is 1 when every rater gave every comment the same label: kappa is 0/0.
        lines.append(f"Fleiss' kappa: undefined; all {shared} comments with 2+ raters got one and the same label "
                     "from every rater (complete agreement on a single category)")
    else:
        lines.append(f"Fleiss' kappa {res['kappa']:.3f} over {shared} comments with 2+ raters")
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
