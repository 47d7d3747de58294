"""Every fault type, injected through the admin endpoint of a running service, changes that
service's metrics (the real service code, run in this process with an in-memory reader).

No check depends on how fast this machine is: the tests wait for counts (frames, CPU seconds,
bytes) instead of sleeping a fixed time, and compare with lower bounds that only the fault can
reach (a delay the fault adds, CPU time a thread used), not with shares of wall-clock time.
"""

from __future__ import annotations

import asyncio
import gc
import math
import threading
import time

import httpx
import psutil
import pytest
from demo_harness import AUTH, histogram_mean, in_process
from patience import eventually

from services.app import ServiceRuntime
from services.faults import FaultState
from services.stack import FAULTS, load_stack

DURATION = "http.server.request.duration"
TTFT = "gen_ai.server.time_to_first_token"
TPOT = "gen_ai.server.time_per_output_token"
RTT = "messaging.client.operation.duration"
PROMPT = {"prompt_tokens": 400, "max_tokens": 12}


def test_admin_endpoint_needs_the_token_and_validates():
    async def main() -> None:
        async with in_process("llm-serving", ["decode-0"]) as services:
            client = services["decode-0"].client
            body = {"fault": "cpu", "params": {}}
            assert (await client.post("/admin/faults", json=body)).status_code == 401
            wrong = {"Authorization": "Bearer nope"}
            assert (await client.post("/admin/faults", json=body, headers=wrong)).status_code == 401
            assert (await client.get("/admin/faults")).status_code == 401
            bad = {"fault": "cpu", "params": {"speed": 2}}
            assert (await client.post("/admin/faults", json=bad, headers=AUTH)).status_code == 422
            nope = {"fault": "link-delay", "params": {}}  # decode-0 has no link
            assert (await client.post("/admin/faults", json=nope, headers=AUTH)).status_code == 422
            assert (await client.post("/admin/faults", json={}, headers=AUTH)).status_code == 422
            before = time.time_ns()
            reply = await client.post("/admin/faults", json=body, headers=AUTH)
            assert reply.status_code == 201
            assert before <= reply.json()["started_unix_ns"] <= time.time_ns()
            listed = (await client.get("/admin/faults", headers=AUTH)).json()["active"]
            assert [a["fault"] for a in listed] == ["cpu"]
            gone = await client.delete(f"/admin/faults/{reply.json()['id']}", headers=AUTH)
            assert gone.status_code == 200
            assert (await client.get("/admin/faults", headers=AUTH)).json()["active"] == []

    asyncio.run(main())


def _cpu_seconds(threads: list[threading.Thread]) -> float:
    """CPU time ``threads`` used so far (Linux's per-thread CPU clocks)."""
    return sum(time.clock_gettime(time.pthread_getcpuclockid(t.ident or 0)) for t in threads)


def test_cpu_hog_burns_cpu_in_the_target_process():
    utilization = "process.cpu.utilization"
    cpus = psutil.cpu_count() or 1

    async def main() -> None:
        async with in_process("llm-serving", ["decode-0"]) as services:
            decode = services["decode-0"]

            def reported_cpu_seconds(opened: float) -> float:
                """CPU seconds in the reading since the interval opened: at least what the
                process used, whatever share of a core it got."""
                return decode.value(utilization) * cpus * (time.monotonic() - opened)

            opened = time.monotonic()
            decode.value(utilization)  # opens the interval
            await asyncio.sleep(0.6)
            idle = reported_cpu_seconds(opened)
            await decode.inject("cpu", threads=1)
            (fault,) = decode.runtime.faults.active()
            assert [t.name for t in fault.threads] == ["cpu-hog-0"]
            opened = time.monotonic()
            decode.value(utilization)
            start = _cpu_seconds(fault.threads)
            await eventually(lambda: _cpu_seconds(fault.threads) - start >= 0.5, "0.5 CPU s")
            hog = reported_cpu_seconds(opened)
            await decode.clear()
            assert hog >= 0.5 > 5 * idle, (idle, hog)
            threads = [t.name for t in threading.enumerate()]
            assert not any(name.startswith("cpu-hog") for name in threads)

    asyncio.run(main())


def test_memory_leak_grows_resident_memory_and_gives_it_back():
    # A process that has freed one large buffer (under 32 MB): glibc then raises its mmap
    # threshold and serves buffers of the leak's size from its heap, which it need not give
    # back (CI saw 24 of 30 MB come back).
    freed = bytearray(30_000_000)
    del freed

    async def main() -> None:
        async with in_process("sockshop", ["carts-db"]) as services:
            db = services["carts-db"]
            gc.collect()
            before = db.value("process.memory.usage")
            await db.inject("mem", mb_per_s=80, objects_per_s=20000)
            await eventually(
                lambda: db.value("process.memory.usage") - before > 50e6, "50 MB more resident"
            )
            during = db.value("process.memory.usage")
            await db.clear()
            after = db.value("process.memory.usage")
            assert after < during - 30e6, (during, after)

    asyncio.run(main())


def test_latency_errors_and_drops_show_in_the_request_metrics():
    async def main() -> None:
        async with in_process("sockshop", ["payment"]) as services:
            payment = services["payment"]
            start = payment.readings()
            for _ in range(5):
                assert (await payment.post("/paymentAuth")).status_code == 200
            normal = payment.readings()
            base, n = histogram_mean(
                start, normal, DURATION, **{"http.response.status_code": "200"}
            )
            assert n == 5

            await payment.inject("latency", ms=80)
            for _ in range(5):
                await payment.post("/paymentAuth")
            slow = payment.readings()
            await payment.clear()
            delayed, _ = histogram_mean(normal, slow, DURATION)
            # Each request waited the 80 ms on top of its work (the normal ones take a few ms);
            # a bound that a busy machine can only help, unlike the difference of two means.
            assert delayed >= 0.08, (base, delayed)

            await payment.inject("errors", ratio=1.0)
            statuses = {(await payment.post("/paymentAuth")).status_code for _ in range(4)}
            failing = payment.readings()
            await payment.clear()
            assert statuses == {500}
            _, errors = histogram_mean(
                slow, failing, DURATION, **{"http.response.status_code": "500"}
            )
            assert errors == 4

            await payment.inject("drop", ratio=1.0)
            request = asyncio.create_task(payment.post("/paymentAuth"))
            await eventually(
                lambda: request.done() or payment.value("http.server.active_requests") > 0.5,
                "the request held",
            )
            assert not request.done()  # never answered
            request.cancel()
            dropped = payment.readings()
            await payment.clear()
            _, answered = histogram_mean(failing, dropped, DURATION)
            assert answered == 0  # a dropped request never reaches the server's metrics

    asyncio.run(main())


def test_gpu_throttling_lowers_the_clock_and_slows_decode():
    llm = load_stack("llm-serving").services["decode-0"].llm
    assert llm is not None
    nominal = llm.tpot_ms / 1000

    async def main() -> None:
        async with in_process("llm-serving", ["decode-0"]) as services:
            decode = services["decode-0"]
            start = decode.readings()
            clock = decode.value("hw.gpu.clock.sm", **{"hw.id": "modelled-decode-0"})
            await asyncio.gather(*(decode.post("/v1/decode", PROMPT) for _ in range(3)))
            normal = decode.readings()
            tpot, _ = histogram_mean(start, normal, TPOT)
            await decode.inject("gpu-throttle", clock_factor=0.4)
            await asyncio.gather(*(decode.post("/v1/decode", PROMPT) for _ in range(3)))
            throttled = decode.readings()
            slow_clock = decode.value("hw.gpu.clock.sm", **{"hw.id": "modelled-decode-0"})
            await decode.clear()
            slow_tpot, _ = histogram_mean(normal, throttled, TPOT)
            assert slow_clock < 0.5 * clock
            # At 0.4 of the clock a token takes 2.5 nominal times (about 1 without the throttle):
            # over twice the nominal time however busy the machine is, as a busy one only adds.
            assert slow_tpot > 2.0 * nominal, (nominal, tpot, slow_tpot)

    asyncio.run(main())


def test_kv_pressure_fills_the_cache_queues_and_preempts():
    async def main() -> None:
        async with in_process("llm-serving", ["decode-0"]) as services:
            decode = services["decode-0"]
            decode.readings()
            await asyncio.gather(*(decode.post("/v1/decode", PROMPT) for _ in range(4)))
            normal = decode.readings()
            await decode.inject("kv-pressure", fraction=0.85)
            big = {"prompt_tokens": 500, "max_tokens": 40}
            await asyncio.gather(*(decode.post("/v1/decode", big) for _ in range(6)))
            pressed = decode.readings()
            await decode.clear()
            kv = dict((k[0], v) for k, v in pressed.items())
            assert kv["vllm.kv_cache_usage_perc"] > 0.8
            waits = kv["vllm.num_requests_waiting"]
            preempted = (
                kv["vllm.num_preemptions"]
                - dict((k[0], v) for k, v in normal.items())["vllm.num_preemptions"]
            )
            assert waits > 0 or preempted > 0, (waits, preempted)
            ttft, _ = histogram_mean(normal, pressed, TTFT)
            base, _ = histogram_mean({}, normal, TTFT)
            assert ttft > 2 * base, (base, ttft)

    asyncio.run(main())


def _mean_rtt(before, after, **attrs):
    topic = {"messaging.destination.name": "/robot-1/camera"}
    return histogram_mean(before, after, RTT, **topic, **attrs)


def _frames_in_flight() -> int:
    """How many of robot-1's frames can be on the link at once: sent within one timeout."""
    loop = load_stack("robotics").services["robot-1"].loop
    assert loop is not None
    (call,) = loop.calls
    return math.ceil(call.timeout_ms / (loop.period_ms * call.every_ticks)) + 1


@pytest.mark.parametrize("fault", ["link-delay", "link-jitter", "link-loss"])
def test_link_faults_hit_the_robot_to_fog_link(fault):
    in_flight = _frames_in_flight()
    age = "ros2.message.age"
    topic = {"messaging.destination.name": "/robot-1/camera"}
    timeout = {"error.type": "timeout"}

    async def main() -> None:
        async with in_process("robotics", ["robot-1", "fog-1"]) as services:
            robot, fog = services["robot-1"], services["fog-1"]

            def frames_since(mark, **attrs) -> int:
                return _mean_rtt(mark, robot.readings(), **attrs)[1]

            start = robot.readings()
            # the control loop streams frames to fog-1
            await eventually(lambda: frames_since(start) >= 5, "5 frames")
            normal = robot.readings()
            base, _ = _mean_rtt(start, normal)
            params = {
                "link-delay": {"ms": 60},
                "link-jitter": {"ms": 150},
                "link-loss": {"ratio": 1.0},
            }
            await robot.inject(fault, **params[fault])
            injected, fog_injected = robot.readings(), fog.readings()
            if fault == "link-loss":
                # A timeout beyond the frames in flight is a frame sent after the injection, so
                # every frame sent before has come back or timed out: none gets through after.
                await eventually(lambda: frames_since(injected, **timeout) > in_flight, "losses")
                lost, fog_lost = robot.readings(), fog.readings()
                await eventually(lambda: frames_since(lost, **timeout) >= 3, "3 more lost")
                hit, fog_hit = robot.readings(), fog.readings()
                await robot.clear()
                _, answered = _mean_rtt(lost, hit)
                _, timeouts = _mean_rtt(lost, hit, **timeout)
                assert answered == timeouts >= 3, (answered, timeouts)
                _, received = histogram_mean(fog_lost, fog_hit, age, **topic)
                assert received == 0
            else:
                # Up to in_flight frames left before the injection; with 4 times as many, at
                # least 3/4 crossed the faulty link (60 ms, or 75 ms on average, each way).
                await eventually(lambda: frames_since(injected) >= 4 * in_flight, "frames")
                hit, fog_hit = robot.readings(), fog.readings()
                await robot.clear()
                rtt, _ = _mean_rtt(injected, hit)
                assert rtt > 0.05, (base, rtt)
                fog_age, _ = histogram_mean(fog_injected, fog_hit, age, **topic)
                assert fog_age > 0.02, fog_age

    asyncio.run(main())


def test_every_fault_type_is_covered_here():
    covered = {
        "cpu", "mem", "latency", "errors", "drop", "gpu-throttle", "kv-pressure",
        "link-delay", "link-jitter", "link-loss",
    }  # fmt: skip
    assert covered == set(FAULTS)
    assert ServiceRuntime  # the real runtime is what runs in the tests above
    assert httpx


def test_fault_state_sets_what_the_shared_effect_table_says():
    """Live faults read their quantities and caps from services.stack.FAULTS, the table the
    simulator reads: a delay in seconds, a share capped at every request, a clock floored at
    5 % of nominal, a tenth of the KV cache kept; the hardest of several hits wins."""
    faults = FaultState(seed=1)
    try:
        for fault, params in [
            ("latency", {"ms": 80.0}),
            ("latency", {"ms": 20.0}),
            ("errors", {"ratio": 3.0}),
            ("gpu-throttle", {"clock_factor": 0.5}),
            ("gpu-throttle", {"clock_factor": 0.01}),
            ("kv-pressure", {"fraction": 0.99}),
            ("link-loss", {"ratio": 1.5}),
        ]:
            faults.inject(fault, params)
        delay, error, drop = faults.request_fate()
        assert (delay, error, drop) == (0.08, True, False)
        assert faults.clock_factor == 0.05
        assert (
            faults.kv_taken
            == 0.9
            == FAULTS["kv-pressure"].effects_of({"fraction": 0.99})["kv_taken"]
        )
        assert all(faults.link_lost() for _ in range(20))
        faults.clear()
        assert faults.request_fate() == (0.0, False, False)
        assert (faults.clock_factor, faults.kv_taken, faults.link_lost()) == (1.0, 0.0, False)
    finally:
        faults.close()
