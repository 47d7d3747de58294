"""The examples in docstrings run as tests.

Collected here rather than with ``--doctest-modules``, which would also import each test folder's
``conftest.py`` as a module named ``conftest`` and clash between folders.
"""

from __future__ import annotations

import doctest
import importlib

import pytest
from toys import REPO


def _modules_with_examples() -> list[str]:
    names = []
    for package in ("rca", "services"):
        for path in sorted((REPO / package).rglob("*.py")):
            if ">>> " in path.read_text(encoding="utf-8"):
                parts = path.relative_to(REPO).with_suffix("").parts
                names.append(".".join(p for p in parts if p != "__init__"))
    return names


MODULES = _modules_with_examples()


def test_examples_were_found() -> None:
    assert "rca.types" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
    assert result.attempted > 0
