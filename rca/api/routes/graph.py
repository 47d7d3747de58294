"""``GET /v1/graph``: the causal graph learned from history in the background
(:mod:`rca.incidents.graph_refresh`), in Grafana's node-graph shape."""

from __future__ import annotations

from collections import Counter
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query

from rca.api.deps import ServiceDep, require_token
from rca.api.schemas import ErrorPublic, GraphNodePublic, LearnedEdgePublic, LearnedGraphPublic
from rca.report.layout import service_graph, service_or_self
from rca.types import CausalGraph

router = APIRouter(prefix="/v1", tags=["graph"], dependencies=[Depends(require_token)])


@router.get(
    "/graph",
    response_model=LearnedGraphPublic,
    responses={
        401: {"model": ErrorPublic, "description": "no or wrong token"},
        404: {"model": ErrorPublic, "description": "no graph fitted yet"},
    },
)
def learned_graph(
    service: ServiceDep,
    level: Literal["service", "series"] = Query(
        "service", description="one node per service (series edges folded), or per series"
    ),
    top: int = Query(100, ge=1, le=1000, description="at most this many edges, heaviest first"),
) -> LearnedGraphPublic:
    row = service.store.latest_graph()
    if row is None:
        raise HTTPException(
            404,
            "no causal graph fitted yet: the server fits one from the stored history every "
            "RCA_GRAPH_REFRESH_SECONDS (0: never), once there is enough of it",
        )
    graph = CausalGraph.from_json(row["graph"])
    pairs: list[tuple[str, str, float, int | None]]
    if level == "service":
        folded = service_graph(graph, max_edges=top)
        pairs = [(u, v, d["weight"], None) for u, v, d in folded.edges(data=True)]
    else:
        pairs = [(e.cause, e.effect, e.weight, e.lag_steps) for e in graph.edges()]
    pairs = sorted(pairs, key=lambda e: (-e[2], e[0], e[1]))[:top]
    names = sorted({name for u, v, _, _ in pairs for name in (u, v)})
    causes_of = Counter(u for u, _, _, _ in pairs)
    return LearnedGraphPublic(
        nodes=[
            GraphNodePublic(
                id=name,
                title=name,
                subTitle="service" if level == "service" else service_or_self(name),
                mainStat=float(causes_of[name]),
            )
            for name in names
        ],
        edges=[
            LearnedEdgePublic(
                id=f"{u}->{v}",
                source=u,
                target=v,
                mainStat=round(w, 6),
                secondaryStat=None if not lag else float(lag),
            )
            for u, v, w, lag in pairs
        ],
        version=row["version"],
        fitted_at=row["fitted_at"],
        history_start=row["history_start"],
        history_end=row["history_end"],
        fit_seconds=row["seconds"],
        series=row["series"],
        learned_edges=row["edges"],
        level=level,
    )
