"""How many threads the engine's PyTorch and NumPy work uses: one rule for every entry point.

PyTorch starts as many intra-op threads as the machine has cores, and so does NumPy's OpenBLAS.
The engine's models and matrices are small, so those threads mostly wait on each other, and
when anything else runs beside them they wait on the scheduler too: the same analysis took 16 s
with two threads on a busy 2-core machine and 1.5 s with one. The rule: ``RCA_TORCH_THREADS``
when set, else ``OMP_NUM_THREADS`` when set, else half the cores this process may run on (at
least 1, at most 4), divided among ``share`` processes that run analyses side by side.
"""

from __future__ import annotations

import os
import sys

MAX_DEFAULT_THREADS = 4


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a container's cpuset)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def torch_threads(share: int = 1) -> int:
    """The number of intra-op threads for one of ``share`` analysing processes."""
    for variable in ("RCA_TORCH_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(variable, "").strip()
        if value:
            try:
                return max(1, int(value))
            except ValueError:
                raise SystemExit(f"{variable} must be a whole number, got {value!r}") from None
    return max(1, min(MAX_DEFAULT_THREADS, usable_cores() // 2) // max(1, share))


def configure_torch_threads(share: int = 1) -> int:
    """Apply :func:`torch_threads` to this process (see :func:`limit_threads`)."""
    threads = torch_threads(share)
    limit_threads(threads)
    return threads


def limit_threads(threads: int) -> None:
    """``threads`` for torch if it is imported, else through ``OMP_NUM_THREADS`` for when it is
    (importing torch here would cost every command a second), and for the BLAS libraries
    already loaded (NumPy's OpenBLAS reads its variable only when it loads)."""
    from threadpoolctl import threadpool_limits

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    threadpool_limits(threads, user_api="blas")
