"""Issue and call throughput and p99 on each deployment of the store, and the failover gap.

    PYTHONPATH=. flock /tmp/madoguchi-bench.lock .venv/bin/python benchmarks/deployments.py
    PYTHONPATH=. flock /tmp/madoguchi-bench.lock .venv/bin/python benchmarks/deployments.py --tree /tmp/old --only single

Deployments (each started fresh, its Valkey processes on this machine, from tests/deploy/engines.py):
``single`` (the embedded Valkey, the default), ``sentinel-nowait`` (primary + replica + 3 Sentinels,
``replica_acks = 0``), ``sentinel`` (the same, each change WAITing for the replica: what WAIT costs is
the difference), ``cluster`` (3 primaries + 3 replicas, WAIT). For each: 16 clients issuing
``--tickets`` tickets over HTTP (tickets/s, p50, p99), then 16 counters each calling next, starting
and finishing (call-next calls/s and p99). Then, for Sentinel and the cluster, the failover gap:
kill -9 the office's primary while 16 clients issue with Idempotency-Keys and retry (the
replica is promoted, the killed node is started again and comes back as its replica), and report
how long no request was answered and how long attempts failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any, Final

import aiohttp
from api_load import issue_load  # benchmarks/ (scripts run from this folder)
from bench_server import BENCH_CONFIG, start_server
from calibration import print_calibration
from stats import percentile

from tests.deploy.engines import SERVICE, SentinelGroup, ValkeyCluster, wait_for
from tests.deploy.load import Load, clients

SMOKE_ARGS: Final = ["--tickets", "64", "--only", "single", "--only", "cluster", "--no-failover"]
"""A small configuration the test suite runs (tests/test_benchmarks.py): the embedded node and a cluster."""

COUNTERS = 16
OFFICE = BENCH_CONFIG.replace(
    '[[offices.counters]]\nid = "1"\nprocedures = ["application"]\n',
    "".join(f'[[offices.counters]]\nid = "{i}"\nprocedures = ["application"]\n' for i in range(1, COUNTERS + 1)))
USER, PASSWORD = "bench", "bench-password"
EVSEQ = "mg:o:{bench}:evseq"


def config_for(deployment: SentinelGroup | ValkeyCluster | None, acks: int | None) -> str:
    lines = ""
    if isinstance(deployment, SentinelGroup):
        addresses = ", ".join(f'"{a}"' for a in deployment.sentinel_addresses)
        lines = f'sentinel = {{ master = "{SERVICE}", addresses = [{addresses}] }}\n'
    elif isinstance(deployment, ValkeyCluster):
        lines = f'cluster_url = "{deployment.url}"\n'
    if acks is not None:
        lines += f"replica_acks = {acks}\n"
    return OFFICE.replace("[server]\n", "[server]\n" + lines, 1)


async def call_load(url: str, rounds: int) -> dict[str, float]:
    """``COUNTERS`` staff, each on its own counter: call next, start, finish, ``rounds`` times."""
    latencies: list[float] = []
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.post(f"{url}/api/session", json={"username": USER, "password": PASSWORD}) as resp:
            csrf = (await resp.json())["csrf_token"]
        headers = {"X-CSRF-Token": csrf}

        async def counter(number: int) -> None:
            base = f"{url}/api/offices/bench/counters/{number}"
            async with session.post(f"{base}/open", headers=headers) as resp:
                assert resp.status == 200, await resp.text()
            for _ in range(rounds):
                began = time.perf_counter()
                async with session.post(f"{base}/call-next", headers=headers) as resp:
                    assert resp.status == 200, await resp.text()
                latencies.append(time.perf_counter() - began)
                for action in ("start", "finish"):
                    async with session.post(f"{base}/{action}", headers=headers) as resp:
                        assert resp.status == 200, await resp.text()

        began = time.perf_counter()
        await asyncio.gather(*(counter(i) for i in range(1, COUNTERS + 1)))
        elapsed = time.perf_counter() - began
    return {"calls": len(latencies), "per_second": len(latencies) / elapsed,
            "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000}


async def failover_gap(url: str, deployment: SentinelGroup | ValkeyCluster) -> dict[str, float]:
    """Kill -9 the office's primary under 16 retrying clients; seconds without an answer, and of failures."""
    load, stop = Load(), asyncio.Event()
    running = asyncio.create_task(clients(url, load, stop, booking_share=0.0, office="bench"))

    async def acknowledged(count: int) -> None:
        while load.acknowledged < count:
            if running.done():
                running.result()  # a client's failure, raised here
            await asyncio.sleep(0.01)

    await acknowledged(200)
    primary = deployment.primary_of(EVSEQ)
    killed = time.monotonic()
    primary.kill()
    await asyncio.to_thread(wait_for, lambda: deployment.promoted_from(primary, EVSEQ), "the replica promoted", 120)
    promoted_s = time.monotonic() - killed
    primary.start()
    await asyncio.to_thread(deployment.wait_healthy, 120)
    whole_s = time.monotonic() - killed
    await acknowledged(load.acknowledged + 200)
    stop.set()
    await running
    return {"promoted_s": promoted_s, "whole_s": whole_s, "silence_s": load.longest_silence(killed),
            "failing_s": load.outage_seconds(), "retried": len(load.retried)}


async def run(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    deployment: SentinelGroup | ValkeyCluster | None = None
    acks = None
    if kind.startswith("sentinel"):
        deployment, acks = SentinelGroup(failover_ms=1000), 0 if kind == "sentinel-nowait" else 1
    elif kind == "cluster":
        deployment = ValkeyCluster(failover_ms=1000)
    if deployment is not None:
        deployment.start()
    tree = Path(args.tree) if args.tree else None
    server, url = await start_server(USER, PASSWORD, config=config_for(deployment, acks), tree=tree)
    try:
        result: dict[str, Any] = {"deployment": kind}
        result["issue"] = await issue_load(url, "bench", "application", 16, args.tickets)
        result["call"] = await call_load(url, args.tickets // COUNTERS)
        if deployment is not None and kind != "sentinel-nowait" and not args.no_failover:
            result["failover"] = await failover_gap(url, deployment)
        return result
    finally:
        server.terminate()
        server.wait()
        if deployment is not None:
            deployment.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=3200, help="tickets issued per deployment (then called)")
    parser.add_argument("--only", action="append", choices=["single", "sentinel-nowait", "sentinel", "cluster"])
    parser.add_argument("--tree", help="run the server from another checkout (to compare builds)")
    parser.add_argument("--no-failover", action="store_true")
    args = parser.parse_args()
    print_calibration()
    for kind in args.only or ["single", "sentinel-nowait", "sentinel", "cluster"]:
        result = await run(kind, args)
        issue, call = result["issue"], result["call"]
        line = (f"{kind:16} issue c16 {issue['per_second']:7.0f}/s p50 {issue['p50_ms']:5.1f} ms p99 {issue['p99_ms']:6.1f} ms"
                f" | call-next x{COUNTERS} {call['per_second']:6.0f}/s p50 {call['p50_ms']:5.1f} ms p99 {call['p99_ms']:6.1f} ms")
        if "failover" in result:
            f = result["failover"]
            line += (f" | failover: promoted {f['promoted_s']:.2f} s, whole {f['whole_s']:.2f} s, no answer for "
                     f"{f['silence_s']:.2f} s, failing {f['failing_s']:.2f} s, {f['retried']} retried")
        print(line, flush=True)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
