"""The README's commands, run as written: every ```bash block is read from README.md, and each
command not in SKIPPED runs through bash, in README order, in a scratch folder that links the
checkout's ``.venv`` and ``examples`` (so files the commands write land there). Long-running
commands (broker, ingest, serve, a collector) run in the background until their block ends.

Only placeholders change, always the same way (``runnable``):
  * ``PORT``: the port the block's ``rca broker`` printed;
  * ``ID``: the incident id in the answer of the block's ``POST /v1/rca``;
  * the fixed ports 8080 (``rca serve``, which gets ``--port``), 8465 (``rca ingest --http``) and
    4318 (the OTLP/HTTP collector): free ports, as the test may run beside other servers;
  * trailing ``# comments`` are dropped.
The environment gets ``RCA_DATABASE_URL`` in the scratch folder and ``RCA_WORKERS=1``; other
``RCA_*`` settings of the caller are removed (a token would change every answer).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from patience import patience, wait_for

from rca.transport.broker import free_port

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SAMPLE_CAUSE = json.loads((ROOT / "examples/sample-incident/incident.json").read_text())[
    "root_cause"
]["service"]

# Commands not run here, matched by how they start, and why.
SKIPPED: dict[str, str] = {
    "scripts/main.sh": "the demo and every benchmark (minutes); CI runs it",
    "scripts/test.sh": "the test suite itself; CI runs it",
    ".venv/bin/rca demo": "a live stack for minutes; tests/demo covers it",
    ".venv/bin/rca bench --dataset rcd-sockshop": "50 real cases; tests/test_bench.py covers it",
    ".venv/bin/rca bench --dataset /path/to/": "a placeholder for a folder of yours",
    ".venv/bin/rca bench --dataset sim:robotics": "hundreds of cases; tests/test_bench.py",
    ".venv/bin/python -m collectors.scrape": "needs a real Prometheus endpoint (vllm-0:8000)",
    ".venv/bin/python -m collectors.host": "placeholders (a pid, `...`); tests/telemetry",
    ".venv/bin/python -m collectors.gpu": "reads NVML: what it does depends on the GPUs here",
    "RCA_API_TOKEN=... ": "a placeholder token, every interface; tests/api/test_serve_e2e.py",
    'curl -H "Authorization: Bearer $RCA_API_TOKEN"': "needs the replica above",
    "RCA_GRAFANA_URL=": "needs a Grafana server; tests/api/test_grafana.py (a fake)",
    ".venv/bin/python -m services up": "a whole stack of processes; tests/demo covers it",
    ".venv/bin/python -m services inject": "needs the stack above",
    "docker build": "no Docker daemon here",
    "helm install": "needs a Kubernetes cluster; tests/test_helm.py renders the charts",
}


@dataclass
class Block:
    """What the commands of one block left behind: placeholders' values, background runs."""

    folder: Path
    env: dict[str, str]
    values: dict[str, str] = field(default_factory=dict)
    background: list[subprocess.Popen[bytes]] = field(default_factory=list)


def _json(out: str) -> dict:
    try:
        return json.loads(out)
    except ValueError:
        return {}


def _listening(port: str) -> bool:
    try:
        socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()
        return True
    except OSError:
        return False


def _broker_port(block: Block, log: str) -> bool:
    found = re.search(r"Kafka API on 127\.0\.0\.1:(\d+)", log)
    if found:
        block.values["PORT"] = found.group(1)
    return found is not None


def _incident_id(block: Block, out: str) -> bool:
    body = _json(out)
    block.values["ID"] = body.get("id", "")
    return body.get("status") == "queued"


def _ranked_first(out: str) -> bool:
    return bool(re.search(rf"^\s*1\s+{SAMPLE_CAUSE}\s", out, re.M))


# Background commands and when they are up (block, their output so far).
BACKGROUND: dict[str, Callable[[Block, str], bool]] = {
    ".venv/bin/rca broker": _broker_port,
    ".venv/bin/rca ingest": lambda block, log: "status on http://" in log,
    "RCA_STEP_SECONDS=5 .venv/bin/rca serve": lambda block, log: _listening(block.values["8080"]),
    ".venv/bin/python -m collectors.otlp_http": lambda b, log: _listening(b.values["4318"]),
}

# What a command's output must show; `until` commands are repeated until it does, as a reader
# would (the README says what to wait for).
CHECKS: dict[str, Callable[[Block, str], bool]] = {
    ".venv/bin/rca analyze": lambda block, out: _ranked_first(out),
    "curl '127.0.0.1:8465/health'": lambda block, out: "decoder" in _json(out),
    "curl -X POST 127.0.0.1:8080/v1/rca": _incident_id,
    "curl 127.0.0.1:8080/v1/incidents/ID/ranking": lambda block, out: (
        _json(out)["data"][0]["service"] == SAMPLE_CAUSE
    ),
}
UNTIL: dict[str, Callable[[Block, str], bool]] = {
    "curl '127.0.0.1:8465/window": lambda block, out: len(_json(out).get("columns", [])) == 4,
    "curl 127.0.0.1:8080/readyz": lambda block, out: (
        _json(out).get("ready") is True and _json(out).get("series") == 32
    ),
    "curl 127.0.0.1:8080/v1/incidents/ID ": lambda block, out: (
        _json(out).get("status") in ("done", "failed")
    ),
}
DONE = "curl 127.0.0.1:8080/v1/incidents/ID "


def bash_blocks(text: str) -> list[tuple[str, list[str]]]:
    """The section heading and the commands of each ```bash block: continued lines joined,
    comment lines dropped."""
    blocks = []
    pattern = r"^## ([^\n]*)\n|^```bash\n(.*?)^```"
    heading = ""
    for found in re.finditer(pattern, text, re.S | re.M):
        if found.group(1) is not None:
            heading = found.group(1)
            continue
        body = found.group(2)
        commands: list[str] = []
        pending = ""
        for line in body.splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1].rstrip() + " "
                continue
            commands.append((pending + line.strip()).strip())
            pending = ""
        blocks.append((heading, commands))
    return blocks


def _match(command: str, table: dict[str, object]) -> str | None:
    return next((prefix for prefix in table if command.startswith(prefix)), None)


def runnable(command: str, block: Block) -> str:
    """The command as run: its comment dropped, the placeholders replaced (module docstring)."""
    text = re.sub(r"\s+#.*$", "", command)
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{block.values['8080']}")
    text = text.replace("127.0.0.1:8465", f"127.0.0.1:{block.values['8465']}")
    text = text.replace("--port 4318", f"--port {block.values['4318']}")
    if re.search(r"\brca serve\b", text):
        text += f" --port {block.values['8080']}"
    for name in ("PORT", "ID"):
        if name in block.values:
            text = re.sub(rf"\b{name}\b", block.values[name], text)
    return text


def _start(command: str, block: Block, ready: Callable[[Block, str], bool]) -> None:
    log = block.folder / f"background-{len(block.background)}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["bash", "-c", runnable(command, block)],
            cwd=block.folder,
            env=block.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    block.background.append(process)

    def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{command!r} exited: {log.read_text()[-2000:]}")
        return ready(block, log.read_text(errors="replace"))

    wait_for(up, f"{command!r} to be up ({log})", timeout=120)


def _run(command: str, block: Block) -> str:
    done = subprocess.run(
        ["bash", "-c", runnable(command, block)],
        cwd=block.folder,
        env=block.env,
        capture_output=True,
        text=True,
        timeout=patience(),
    )
    assert done.returncode == 0, f"{command!r}: rc {done.returncode}\n{done.stderr[-3000:]}"
    return done.stdout


def _stop(block: Block) -> None:
    for process in reversed(block.background):
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(patience(60))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def run_command(command: str, block: Block) -> None:
    background = _match(command, BACKGROUND)
    if background is not None:
        _start(command, block, BACKGROUND[background])
        return
    until = _match(command, UNTIL)
    if until is not None:
        seen: list[str] = [""]

        def holds() -> bool:
            seen[0] = _run(command, block)
            return UNTIL[until](block, seen[0])

        try:
            wait_for(holds, f"{command!r} to show what the README says")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; it last printed:\n{seen[0][-3000:]}") from None
        if until == DONE:
            assert _json(seen[0])["status"] == "done", seen[0]
        return
    out = _run(command, block)
    check = _match(command, CHECKS)
    if check is not None:
        assert CHECKS[check](block, out), f"{command!r} printed:\n{out[-3000:]}"


BLOCKS = bash_blocks(README.read_text())
RUN_BLOCKS = [
    pytest.param(i, id=f"{i}: {heading.split(':')[0]}")
    for i, (heading, commands) in enumerate(BLOCKS)
    if any(_match(c, SKIPPED) is None for c in commands)
]


def test_every_readme_command_runs_or_says_why_not():
    commands = [c for _, block in BLOCKS for c in block]
    assert len(commands) > 20, "README blocks not found"
    unused = [prefix for prefix in SKIPPED if not any(c.startswith(prefix) for c in commands)]
    assert unused == [], f"skip entries that match no README command: {unused}"
    # Every runnable placeholder is one this test knows how to fill.
    for command in commands:
        if _match(command, SKIPPED) is None:
            text = re.sub(r"\s+#.*$", "", command)
            assert "..." not in text and "<" not in text, f"unknown placeholder: {command!r}"


@pytest.fixture
def block(tmp_path: Path) -> Iterator[Block]:
    if not (ROOT / ".venv/bin/rca").exists():
        pytest.skip("no .venv/bin/rca (run scripts/setup.sh)")
    for name in (".venv", "examples"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCA_")}
    if "RCA_DATA_ROOT" in os.environ:
        env["RCA_DATA_ROOT"] = os.environ["RCA_DATA_ROOT"]
    env.update(RCA_DATABASE_URL=str(tmp_path / "incidents.db"), RCA_WORKERS="1")
    ports = {name: str(free_port()) for name in ("8080", "8465", "4318")}
    running = Block(tmp_path, env, dict(ports))
    try:
        yield running
    finally:
        _stop(running)


@pytest.mark.slow
@pytest.mark.parametrize("index", RUN_BLOCKS)
def test_readme_block_runs_verbatim(block: Block, index: int):
    commands = [c for c in BLOCKS[index][1] if _match(c, SKIPPED) is None]
    if any(c.startswith("curl") for c in commands) and shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    for command in commands:
        run_command(command, block)
