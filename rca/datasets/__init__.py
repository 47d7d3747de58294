"""Benchmark datasets as labelled cases ``(window, onset, truth)``.

``open_dataset("rcd-sockshop", data_root)`` opens a registered dataset under the data root;
``open_dataset("/path/to/folder", data_root)`` opens any folder in RCAEval's layout.
"""

from __future__ import annotations

from pathlib import Path

from rca.datasets.base import Case, Dataset, Truth
from rca.datasets.nezha import NezhaOB
from rca.datasets.petshop import PetShop
from rca.datasets.rcaeval import RCAEvalFolder
from rca.datasets.rcd_sockshop import RCDSockShop
from rca.datasets.synthetic import (
    GENERATED_STACKS,
    StackSim,
    StackSimConfig,
    Synthetic,
    SyntheticConfig,
)
from rca.errors import DatasetLayoutError
from rca.registry import Registry

DATASETS: Registry[Dataset] = Registry("dataset")


def _under(data_root: Path | None, folder: str) -> Path:
    if data_root is None:
        raise DatasetLayoutError(
            f"dataset {folder!r} needs a data root: pass --data-root or set RCA_DATA_ROOT"
        )
    return Path(data_root) / folder


@DATASETS.register("rcd-sockshop", "RCD Sock Shop, 50 CPU/memory faults at 1 s")
def _rcd(data_root: Path | None, seed: int) -> Dataset:
    return RCDSockShop(_under(data_root, "rcd-sockshop"))


@DATASETS.register("nezha-ob", "Nezha Online Boutique, 56 faults at 60 s")
def _nezha(data_root: Path | None, seed: int) -> Dataset:
    return NezhaOB(_under(data_root, "nezha-ob"))


@DATASETS.register("petshop", "Amazon PetShop, 68 issues at 5 min")
def _petshop(data_root: Path | None, seed: int) -> Dataset:
    return PetShop(_under(data_root, "petshop"))


@DATASETS.register("synthetic", "generated incidents with propagation (seeded)")
def _synthetic(data_root: Path | None, seed: int) -> Dataset:
    return Synthetic(SyntheticConfig(seed=seed))


@DATASETS.register("synthetic-hard", "generated incidents whose root is not the loudest anomaly")
def _synthetic_hard(data_root: Path | None, seed: int) -> Dataset:
    return Synthetic(SyntheticConfig(seed=seed, hard=True))


# ``sim:<stack>``: incidents simulated from a demo stack's description (services/stacks/).
SIM_PREFIX = "sim:"


def sim_stacks() -> list[str]:
    """What ``sim:`` takes: the demo stacks (services/stacks/) and the generated ones."""
    from services.stack import stack_names

    return [*stack_names(), *GENERATED_STACKS]


def open_dataset(spec: str, data_root: Path | None, seed: int = 0) -> Dataset:
    """A registered dataset by name, ``sim:<stack>`` (simulated incidents of a demo stack), or
    a folder in RCAEval's layout by path."""
    if spec in DATASETS:
        return DATASETS.get(spec).factory(data_root, seed)
    if spec.startswith(SIM_PREFIX):
        stack = spec.removeprefix(SIM_PREFIX)
        if stack not in sim_stacks():
            raise DatasetLayoutError(f"no stack {stack!r}; sim: takes {', '.join(sim_stacks())}")
        return StackSim(StackSimConfig(stack, seed=seed))
    path = Path(spec)
    if path.is_dir():
        return RCAEvalFolder(path)
    raise DatasetLayoutError(
        f"{spec!r} is neither a dataset ({', '.join(DATASETS.names())}), sim:<stack>, nor a folder"
    )


__all__ = [
    "DATASETS",
    "Case",
    "Dataset",
    "NezhaOB",
    "PetShop",
    "RCAEvalFolder",
    "RCDSockShop",
    "StackSim",
    "StackSimConfig",
    "Synthetic",
    "SyntheticConfig",
    "Truth",
    "open_dataset",
    "sim_stacks",
]
