"""GET /metrics: Prometheus figures that follow the queue, open only to the allowed addresses, ids only in labels."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from queue_server.config import Config, ConfigError, load_config
from queue_server.store.embedded import EmbeddedRedis
from queue_server.web.app import init_app

from .conftest import Api, api_users
from .test_api_lifecycle import receive
from .test_outages import _issued, kill, valkey  # noqa: F401 - valkey: the test's own Valkey, which it may kill
from .waiting import wait_until

TESTS = Path(__file__).parent
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: TestClient) -> Samples:
    """Every sample of a scrape, by name and sorted labels."""
    resp = await client.get("/metrics")
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/plain"
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(await resp.text()) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when it is not there (yet)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_counters_and_gauges_follow_issuing_and_calling(client: TestClient, staff: Api, visitor: Api) -> None:
    before = await scrape(client)
    pickup = {"office": "main", "procedure": "pickup"}
    assert value(before, "madoguchi_waiting", **pickup) == 0  # every procedure is listed, at zero
    assert ("madoguchi_waiting", tuple(sorted(pickup.items()))) in before

    for _ in range(3):
        await visitor.issue("pickup")

    async def issued() -> Samples | None:
        now = await scrape(client)
        return now if value(now, "madoguchi_tickets_issued_total", **pickup) == 3 else None

    now = await wait_until(issued, "three pickup tickets counted as issued")
    assert value(now, "madoguchi_waiting", **pickup) == 3
    assert value(now, "madoguchi_tickets_called_total", **pickup) == 0
    assert value(now, "madoguchi_call_to_display_seconds_count", office="main") == 0

    # A lobby display is connected when the call is made: its latency is observed.
    ws = await visitor.http.ws_connect("/api/ws")
    await ws.send_json({"id": 1, "type": "subscribe", "view": "lobby", "office": "main"})
    assert (await receive(ws, "result"))["success"] is True
    await receive(ws, "snapshot")
    assert value(await scrape(client), "madoguchi_websocket_clients") == 1

    status, body = await staff.counter("2", "call-next")
    assert status == 200 and body["ticket"]["procedure"] == "pickup", body
    while (await receive(ws, "event"))["event"]["type"] != "ticket.called":
        pass
    after = await scrape(client)  # the display has the call, so the server has queued it: no waiting needed
    assert value(after, "madoguchi_tickets_called_total", **pickup) == 1
    assert value(after, "madoguchi_waiting", **pickup) == 2
    assert value(after, "madoguchi_call_to_display_seconds_count", office="main") == 1
    assert value(after, "madoguchi_call_to_display_seconds_bucket", office="main", le="+Inf") == 1

    # A recall is not a second call, but it reaches the display again.
    status, body = await staff.counter("2", "recall")
    assert status == 200, body
    while (await receive(ws, "event"))["event"]["type"] != "ticket.recalled":
        pass
    again = await scrape(client)
    assert value(again, "madoguchi_tickets_called_total", **pickup) == 1
    assert value(again, "madoguchi_call_to_display_seconds_count", office="main") == 2

    await ws.close()
    await wait_until(lambda: _clients_are(client, 0), "the closed WebSocket no longer counted")


async def _clients_are(client: TestClient, count: int) -> bool:
    return value(await scrape(client), "madoguchi_websocket_clients") == count


async def test_estimator_runs_and_the_events_channel_are_reported(client: TestClient) -> None:
    async def estimated() -> Samples | None:
        now = await scrape(client)
        return now if value(now, "madoguchi_estimate_seconds_count", office="main") >= 1 else None

    now = await wait_until(estimated, "an estimate run recorded")
    assert value(now, "madoguchi_estimate_seconds_sum", office="main") > 0
    assert value(now, "madoguchi_events_channel_connected") == 1
    assert ("madoguchi_events_channel_reconnects_total", ()) in now
    assert ("madoguchi_store_errors_total", (("where", "request"),)) not in now  # nothing failed


async def test_labels_hold_only_ids(client: TestClient, config: Config, staff: Api, visitor: Api) -> None:
    issued = await visitor.issue("application", lang="en")
    status, _ = await staff.counter("1", "call-next")
    assert status == 200

    async def counted() -> Samples | None:
        now = await scrape(client)
        return now if value(now, "madoguchi_tickets_called_total", office="main", procedure="application") else None

    await wait_until(counted, "the call counted")
    await wait_until(lambda: _estimated(client), "an estimate run recorded")
    samples = await scrape(client)
    ids = {"office": set(config.offices),
           "procedure": {p for o in config.offices.values() for p in o.procedures},
           "where": {"request", "websocket"}}
    seen = set()
    for name, labels in samples:
        for key, label in labels:
            if key == "le":  # a histogram bucket's bound
                float(label)
                continue
            assert key in ids, f"{name} has a label {key!r} that is not an id"
            assert label in ids[key], f"{name}{{{key}={label!r}}} is not a configured id"
            seen.add(key)
    assert seen >= {"office", "procedure"}
    assert issued["ticket"]["number"] not in {label for _, labels in samples for _, label in labels}


async def _estimated(client: TestClient) -> bool:
    return value(await scrape(client), "madoguchi_estimate_seconds_count", office="main") >= 1


async def test_an_address_outside_the_allow_list_is_refused(make_client: Callable[..., Awaitable[TestClient]],
                                                             config: Config) -> None:
    only_elsewhere = dataclasses.replace(config.server, metrics_allow=(ipaddress.ip_network("10.1.2.0/24"),))
    client = await make_client(dataclasses.replace(config, server=only_elsewhere))
    resp = await client.get("/metrics")
    assert resp.status == 403
    body = await resp.json()
    assert body["error"]["code"] == "forbidden" and "metrics_allow" in body["error"]["message"]


def test_metrics_allow_defaults_to_loopback_and_names_a_bad_entry(tmp_path: Path) -> None:
    assert {str(n) for n in load_config(TESTS / "office.toml").server.metrics_allow} == {"127.0.0.1/32", "::1/128"}
    text = (TESTS / "office.toml").read_text(encoding="utf-8")
    path = tmp_path / "office.toml"
    path.write_text(text.replace("[server]\n", '[server]\nmetrics_allow = ["10.0.0.0/8", "prometheus.local"]\n', 1),
                    encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert any("server.metrics_allow" in p and "'prometheus.local' is not an IP address" in p
               for p in caught.value.problems), caught.value.problems
    path.write_text(text.replace("[server]\n", '[server]\nmetrics_allow = ["10.0.0.0/8", "192.0.2.7"]\n', 1),
                    encoding="utf-8")
    assert {str(n) for n in load_config(path).server.metrics_allow} == {"10.0.0.0/8", "192.0.2.7/32"}


@pytest.mark.slow
async def test_store_errors_and_events_channel_reconnects_are_counted(
        aiohttp_client: Callable[..., Awaitable[TestClient]], config: Config, valkey: EmbeddedRedis,
        key_prefix: str) -> None:
    client = await aiohttp_client(init_app(config, redis_url=valkey.url, key_prefix=key_prefix))
    async with api_users(str(client.make_url("/"))) as make:
        visitor = make()
        ticket = await visitor.issue("pickup")
        ws = await visitor.http.ws_connect("/api/ws")
        await kill(valkey)
        status, body = await visitor.post("/api/offices/main/tickets", {"procedure": "pickup"})
        assert status == 503 and body["error"]["code"] == "unavailable"
        await ws.send_json({"id": 1, "type": "subscribe", "view": "ticket", "token": ticket["token"]})
        answer = await receive(ws, "result")
        assert answer["success"] is False and answer["error"]["code"] == "unavailable"
        await ws.close()
        down = await scrape(client)  # the metrics themselves need no Redis
        assert value(down, "madoguchi_store_errors_total", where="request") == 1
        assert value(down, "madoguchi_store_errors_total", where="websocket") == 1
        await valkey.start()

        async def reconnected() -> Samples | None:
            now = await scrape(client)
            return now if value(now, "madoguchi_events_channel_connected") == 1 else None

        back = await wait_until(reconnected, "the events channel followed again")
        assert value(back, "madoguchi_events_channel_reconnects_total") == 1


@pytest.mark.slow
async def test_embedded_valkey_restarts_are_reported(aiohttp_client: Callable[..., Awaitable[TestClient]],
                                                     config: Config, tmp_path: Path) -> None:
    own = dataclasses.replace(config, server=dataclasses.replace(config.server, redis_url="", data_dir=tmp_path / "data"))
    client = await aiohttp_client(init_app(own))
    up = await scrape(client)
    assert value(up, "madoguchi_embedded_valkey_running") == 1
    assert ("madoguchi_embedded_valkey_restarts_total", ()) in up
    assert value(up, "madoguchi_embedded_valkey_restarts_total") == 0
    async with api_users(str(client.make_url("/"))) as make:
        api = make()
        status, health = await api.get("/api/health")
        assert status == 200, health
        await kill_pid(health["embedded_valkey"]["pid"])

        async def restarted() -> Samples | None:
            now = await scrape(client)
            return now if value(now, "madoguchi_embedded_valkey_restarts_total") == 1 else None

        assert value(await wait_until(restarted, "the restart reported"), "madoguchi_embedded_valkey_running") == 1
        await wait_until(lambda: _issued(api), "a ticket issued after the restart")


async def kill_pid(pid: int) -> None:
    """SIGKILL the embedded Valkey, as a crash would."""
    os.kill(pid, signal.SIGKILL)
