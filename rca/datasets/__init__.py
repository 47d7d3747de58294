"""Benchmark datasets as labelled cases ``(window, onset, truth)``.

``open_dataset("rcd-sockshop", data_root)`` opens a registered dataset under the data root;
``open_dataset("/path/to/folder", data_root)`` opens any folder in RCAEval's layout;
``open_dataset("sim:<stack>", None)`` opens an installed provider's datasets (the demo stacks'
simulator, ``services.sim``, is the entry point ``sim`` in the group ``rca.datasets``).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol

from rca.datasets.base import Case, Dataset, Truth
from rca.datasets.nezha import NezhaOB
from rca.datasets.petshop import PetShop
from rca.datasets.rcaeval import RCAEvalFolder
from rca.datasets.rcd_sockshop import RCDSockShop
from rca.datasets.synthetic import Synthetic, SyntheticConfig
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


# ``sim:<stack>``: incidents simulated from a demo stack's description, by the provider an
# installed package names as the entry point ``sim`` in this group (services.sim).
SIM_PREFIX = "sim:"
PROVIDERS_GROUP = "rca.datasets"


class DatasetProvider(Protocol):
    """Datasets an installed package offers under a prefix (``sim:<name>``)."""

    def names(self) -> list[str]: ...

    def open(self, name: str, seed: int) -> Dataset: ...


def _sim_provider() -> DatasetProvider | None:
    found = entry_points(group=PROVIDERS_GROUP, name="sim")
    return next((entry.load() for entry in found), None)


def sim_stacks() -> list[str]:
    """What ``sim:`` takes (none without the simulator installed)."""
    provider = _sim_provider()
    return provider.names() if provider is not None else []


def open_dataset(spec: str, data_root: Path | None, seed: int = 0) -> Dataset:
    """A registered dataset by name, ``sim:<stack>`` (simulated incidents of a demo stack), or
    a folder in RCAEval's layout by path."""
    if spec in DATASETS:
        return DATASETS.get(spec).factory(data_root, seed)
    if spec.startswith(SIM_PREFIX):
        return _open_sim(spec.removeprefix(SIM_PREFIX), seed)
    path = Path(spec)
    if path.is_dir():
        return RCAEvalFolder(path)
    raise DatasetLayoutError(
        f"{spec!r} is neither a dataset ({', '.join(DATASETS.names())}), sim:<stack>, nor a folder"
    )


def _open_sim(stack: str, seed: int) -> Dataset:
    provider = _sim_provider()
    if provider is None:
        raise DatasetLayoutError(
            f"sim:{stack} needs the stack simulator (the entry point 'sim' in the group "
            f"{PROVIDERS_GROUP!r}), and no installed package offers it: install this one with "
            "its services (pip install -e .)"
        )
    names = provider.names()
    if stack not in names:
        raise DatasetLayoutError(f"no stack {stack!r}; sim: takes {', '.join(names)}")
    return provider.open(stack, seed)


__all__ = [
    "DATASETS",
    "Case",
    "Dataset",
    "DatasetProvider",
    "NezhaOB",
    "PetShop",
    "RCAEvalFolder",
    "RCDSockShop",
    "Synthetic",
    "SyntheticConfig",
    "Truth",
    "open_dataset",
    "sim_stacks",
]
