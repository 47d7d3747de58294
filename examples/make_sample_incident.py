"""Write examples/sample-incident/ from our own synthetic generator (seeded, reproducible).

    python examples/make_sample_incident.py

The incident is one generated case: a wide CSV (``time`` + one column per series, named by
``rca.types.series_name``) and ``incident.json`` with the onset and the injected root cause.
"""

from __future__ import annotations

import json
from pathlib import Path

from rca.datasets.synthetic import Synthetic, SyntheticConfig

OUT = Path(__file__).parent / "sample-incident"


def main() -> None:
    config = SyntheticConfig(n_cases=1, min_services=8, max_services=8, seed=11)
    case = Synthetic(config).load("0000")
    OUT.mkdir(exist_ok=True)
    frame = case.window.round(4)
    frame.index = frame.index.strftime("%Y-%m-%dT%H:%M:%SZ")
    frame.to_csv(OUT / "incident.csv", index_label="time")
    call_graph = [[caller, callee] for caller, callee in case.call_graph.edges]
    (OUT / "incident.json").write_text(
        json.dumps(
            {
                "onset": case.onset.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "root_cause": {"service": case.truth.service, "fault": case.truth.fault},
                "calls": call_graph,
                "generator": {"seed": config.seed, "services": config.min_services},
            },
            indent=2,
        )
        + "\n"
    )
    print(
        f"wrote {OUT}: {case.window.shape[1]} series x {len(case.window)} rows, "
        f"root cause {case.truth.service} ({case.truth.fault}) at {case.onset}"
    )


if __name__ == "__main__":
    main()
