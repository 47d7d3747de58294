"""The stack simulator: thousands of labelled incidents a minute from the demo stacks'
descriptions, through the one generator (:func:`rca.datasets.synthetic.simulate`).

:class:`StackModel` (:mod:`services.sim.model`) makes every service emit the series its live
process emits, under the same names, and carries the stack's faults (CPU, memory, latency,
errors, drops, GPU throttling, KV-cache pressure, link delay/jitter/loss) as they act live:
what each sets comes from the table the live services read (:data:`services.stack.FAULTS`).
:class:`StackSim` (:mod:`services.sim.dataset`) is the ``sim:<stack>`` dataset; ``sim:large``
is a generated stack at Train Ticket's scale (:func:`large_stack`: 45 services behind one
gateway, with their databases). Each case's alert names the SLOs the incident broke, as the
demo's SLO watcher judges them (learned on the case's history).

The library finds it without importing this package: :data:`PROVIDER` is the entry point
``sim`` in the group ``rca.datasets`` (:func:`rca.datasets.open_dataset`).
"""

from __future__ import annotations

from services.sim.dataset import StackSim, StackSimConfig, slo_alert
from services.sim.large import GENERATED_STACKS, large_stack
from services.sim.model import StackModel
from services.stack import stack_names


class SimProvider:
    """The ``sim:<stack>`` datasets (a :class:`rca.datasets.DatasetProvider`)."""

    def names(self) -> list[str]:
        """The demo stacks (services/stacks/) and the generated ones."""
        return [*stack_names(), *GENERATED_STACKS]

    def open(self, name: str, seed: int) -> StackSim:
        return StackSim(StackSimConfig(name, seed=seed))


PROVIDER = SimProvider()

__all__ = [
    "GENERATED_STACKS",
    "PROVIDER",
    "StackModel",
    "StackSim",
    "StackSimConfig",
    "large_stack",
    "slo_alert",
]
