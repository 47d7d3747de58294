"""Markdown tables from ``rca bench --json`` files (the tables in ``bench/RESULTS.md``).

.venv/bin/python bench/tables.py bench/accuracy/*.json
.venv/bin/python bench/tables.py --matrix bench/matrix/*.json   # the results matrix

The matrix: one table per dataset, one line per view/onset protocol, one column per method,
each cell ``AC@1 / Avg@5 / mean rank of the truth`` (an unranked truth counts as the number of
candidate services + 1), on the rows the files hold (``matrix.sh`` runs the holdout split).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HEADER = (
    "| dataset | method | cases | AC@1 | AC@3 | Avg@5 | s/case median | s/case p90 "
    "| metric AC@1 | metric Avg@5 | errors |\n|---|---|---|---|---|---|---|---|---|---|---|"
)


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summary_table(rows: list[dict]) -> str:
    lines = [HEADER]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['method']} | {r['cases']} | {_num(r['ac1'])} "
            f"| {_num(r['ac3'])} | {_num(r['avg5'])} | {_num(r['seconds_median'], 3)} "
            f"| {_num(r['seconds_p90'], 3)} | {_num(r['metric_ac1'])} ({r['metric_cases']}) "
            f"| {_num(r['metric_avg5'])} | {r['errors']} |"
        )
    return "\n".join(lines)


def fault_table(rows: list[dict]) -> str:
    """Service-level AC@1 / Avg@5 per fault type, one column per method."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cells: dict[tuple[str, str, int], dict[str, str]] = {}
    for r in rows:
        for fault, s in (r.get("by_fault") or {}).items():
            key = (r["dataset"], fault, int(s["cases"]))
            cells.setdefault(key, {})[r["method"]] = f"{_num(s['ac1'])} / {_num(s['avg5'])}"
    if not cells:
        return ""
    lines = [
        "| dataset | fault | cases | " + " | ".join(methods) + " |",
        "|---|---|---|" + "---|" * len(methods),
    ]
    for (dataset, fault, n), by_method in cells.items():
        row = " | ".join(by_method.get(m, "-") for m in methods)
        lines.append(f"| {dataset} | {fault} | {n} | {row} |")
    return "\n".join(lines)


def edge_lines(rows: list[dict]) -> str:
    return "\n".join(
        f"- {r['dataset']} `{r['method']}`: edge precision {_num(r['edge_precision'])} "
        f"(random guess {_num(r['edge_chance'])})"
        for r in rows
        if r.get("edge_precision") is not None
    )


BASELINES = ("baro", "nsigma", "granger-pagerank", "random")


def _beats_baselines(cells: dict[str, dict]) -> str:
    """Whether ``run`` is at least the best baseline on AC@1 and on Avg@5, within one case;
    ``run-topology`` stands in for it where the run left ``run`` out (it ranks as ``run`` does
    on every real dataset, 13-35x faster)."""
    run = cells.get("run") or cells.get("run-topology")
    baselines = [cells[m] for m in BASELINES if m in cells]
    if run is None or not baselines or not run["cases"]:
        return "-"
    slack = 1 / run["cases"] + 1e-9
    ok = all(
        (run[k] or 0.0) + slack >= max(b[k] or 0.0 for b in baselines) for k in ("ac1", "avg5")
    )
    return "yes" if ok else "**no**"


def matrix_tables(rows: list[dict]) -> str:
    """Per dataset: protocols x methods, ``AC@1 / Avg@5 / mean rank`` in each cell."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    out = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        mine = [r for r in rows if r["dataset"] == dataset]
        cells: dict[str, dict[str, dict]] = {}
        for r in mine:
            cells.setdefault(r.get("protocol") or "full view; exact onset", {})[r["method"]] = r
        used = [m for m in methods if any(m in c for c in cells.values())]
        lines = [
            f"**{dataset}** (holdout; AC@1 / Avg@5 / mean rank)",
            "",
            "| view; onset | cases | " + " | ".join(used) + " | truth unseen | onset error "
            "(median steps) | run >= best baseline |",
            "|---|---|" + "---|" * len(used) + "---|---|---|",
        ]
        for protocol, by_method in cells.items():
            first = next(iter(by_method.values()))
            row = " | ".join(
                f"{_num(c['ac1'])} / {_num(c['avg5'])} / {_num(c.get('mean_rank'), 1)}"
                + (f" ({c['errors']} err)" if c["errors"] else "")
                if (c := by_method.get(m))
                else "-"
                for m in used
            )
            lines.append(
                f"| {protocol} | {first['cases']} | {row} | {first.get('unobserved', 0)} "
                f"| {_num(first.get('onset_error_median'), 1)} | {_beats_baselines(by_method)} |"
            )
        out.append("\n".join(lines))
    return "\n\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--matrix", action="store_true", help="the results matrix")
    args = parser.parse_args()
    runs = [json.loads(p.read_text()) for p in args.files]
    if args.matrix:
        print(matrix_tables([r for run in runs for r in run["results"]]))
        return
    results = [r for run in runs for r in run["results"]]
    holdout = [r for run in runs for r in run.get("holdout") or []]
    sections = [("All cases", summary_table(results))]
    if holdout:
        sections.append(("Holdout (every case but the tuning fifth)", summary_table(holdout)))
    sections += [
        ("Per fault (service-level AC@1 / Avg@5)", fault_table(results)),
        ("Learned graph against the true graph", edge_lines(results)),
    ]
    print("\n\n".join(f"**{title}**\n\n{body}" for title, body in sections if body))


if __name__ == "__main__":
    main()
