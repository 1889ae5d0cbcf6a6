"""Behind a trusted reverse proxy the limits and the audit count each real client; a header a client
wrote itself never moves it out of its own budget, and never opens /metrics."""

from __future__ import annotations

import dataclasses
import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestClient

from queue_server.config import Config, ConfigError, load_config
from queue_server.store.ratelimit import ADDRESS_FAILURES
from queue_server.web.client_address import client_of

from .conftest import TESTS
from .test_abuse import audit

LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)
PROXIES = (ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_network("2001:db8:1::/48"))


@pytest.mark.parametrize(("peer", "hops", "client"), [
    ("198.51.100.9", ["203.0.113.7"], "198.51.100.9"),              # untrusted peer: its header is ignored
    ("10.0.0.5", ["203.0.113.7"], "203.0.113.7"),                  # one trusted proxy
    ("10.0.0.5", ["6.6.6.6", " 203.0.113.7"], "203.0.113.7"),      # the client's own "6.6.6.6" stands left
    ("10.0.0.5", ["203.0.113.7", "10.0.0.8", "10.0.0.9"], "203.0.113.7"),  # three proxies in a row
    ("10.0.0.5", ["6.6.6.6", "198.51.100.2", "10.0.0.9"], "198.51.100.2"),  # an untrusted hop ends the walk
    ("10.0.0.5", ["10.0.0.7"], "10.0.0.7"),                        # every hop trusted: the left-most
    ("10.0.0.5", [], "10.0.0.5"),                                  # no header: the proxy itself
    ("10.0.0.5", ["unknown"], "10.0.0.5"),                         # the proxy could not name its client
    ("10.0.0.5", ["6.6.6.6", "garbage", "10.0.0.9"], "10.0.0.9"),  # nor guess past what can't be read
    ("::ffff:10.0.0.5", ["203.0.113.7:4711"], "203.0.113.7"),      # dual-stack peer, address with port
    ("2001:db8:1::2", ["[2001:db8:cafe::17]:4711"], "2001:db8:cafe::17"),
])
def test_the_client_is_the_right_most_hop_that_is_not_a_trusted_proxy(peer: str, hops: list[str], client: str) -> None:
    assert client_of(peer, hops, PROXIES) == client


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert client_of("10.0.0.5", ["203.0.113.7"], ()) == "10.0.0.5"
    assert client_of("", [], ()) == "unknown"


def test_check_config_names_a_bad_proxy_entry_and_header(tmp_path: Any) -> None:
    path = tmp_path / "office.toml"
    path.write_text((TESTS / "office.toml").read_text(encoding="utf-8").replace(
        "[server]\n", '[server]\ntrusted_proxies = ["10.0.0.0/24", "proxy.example"]\nproxy_header = "X-Real-IP"\n', 1),
        encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    problems = "\n".join(e.value.problems)
    assert "server.trusted_proxies" in problems and "'proxy.example'" in problems, problems
    assert "server.proxy_header" in problems and "X-Forwarded-For, Forwarded" in problems, problems


def behind(config: Config, proxies: str, header: str = "X-Forwarded-For", **server: Any) -> Config:
    """``config`` with the test client's loopback address as (or not as) a trusted proxy."""
    return dataclasses.replace(config, server=dataclasses.replace(
        config.server, trusted_proxies=(ipaddress.ip_network(proxies),), proxy_header=header, **server))


async def failed_sign_ins(client: TestClient, headers: dict[str, str], times: int) -> list[int]:
    async with ClientSession(base_url=str(client.make_url("/")), cookie_jar=CookieJar(unsafe=True)) as http:
        statuses = []
        for _ in range(times):  # a new name each time: only the address's budget is spent
            async with http.post("/api/session", json={"username": f"guess-{secrets.token_hex(4)}", "password": "wrong"},
                                 headers=headers) as resp:
                statuses.append(resp.status)
        return statuses


async def test_behind_a_trusted_proxy_each_client_has_its_own_sign_in_budget(
        make_client: Callable[..., Awaitable[TestClient]], config: Config) -> None:
    client = await make_client(behind(config, "127.0.0.1/32"))
    budget = ADDRESS_FAILURES.free + 1
    first = await failed_sign_ins(client, {"X-Forwarded-For": "203.0.113.7"}, budget + 1)
    assert first[:budget] == [401] * budget and first[-1] == 429, first
    # Another visitor's PC behind the same proxy is not slowed by the first one's failures...
    assert await failed_sign_ins(client, {"X-Forwarded-For": "203.0.113.8"}, 1) == [401]
    # ...and the first cannot escape its budget by writing another address in front of the proxy's.
    assert await failed_sign_ins(client, {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}, 1) == [429]
    failed = {e["address"] for e in await audit(client) if e["action"] == "sign_in.failed"}
    assert failed == {"203.0.113.7", "203.0.113.8"}, failed  # the audit names the clients, not the proxy


async def test_the_forwarded_header_is_read_when_configured(
        make_client: Callable[..., Awaitable[TestClient]], config: Config) -> None:
    client = await make_client(behind(config, "127.0.0.1/32", "Forwarded"))
    await failed_sign_ins(client, {"Forwarded": 'for="[2001:db8:cafe::17]:4711";proto=https',
                                   "X-Forwarded-For": "198.51.100.1"}, 1)  # the other header is not read
    failed = [e["address"] for e in await audit(client) if e["action"] == "sign_in.failed"]
    assert failed == ["2001:db8:cafe::17"]


async def test_a_spoofed_header_from_an_untrusted_peer_is_ignored(
        make_client: Callable[..., Awaitable[TestClient]], config: Config) -> None:
    client = await make_client(behind(config, "10.0.0.0/24"))  # the loopback test client is no proxy
    budget = ADDRESS_FAILURES.free + 1
    statuses = [(await failed_sign_ins(client, {"X-Forwarded-For": f"203.0.113.{n}"}, 1))[0] for n in range(budget + 1)]
    assert statuses[:budget] == [401] * budget and statuses[-1] == 429, statuses  # one budget, however it lies
    assert {e["address"] for e in await audit(client) if e["action"] == "sign_in.failed"} == {"127.0.0.1"}


async def test_websocket_connections_count_per_client_behind_the_proxy(
        make_client: Callable[..., Awaitable[TestClient]], config: Config) -> None:
    client = await make_client(behind(config, "127.0.0.1/32", ws_connections_per_address=2))
    async with ClientSession() as http:
        url = str(client.make_url("/api/ws"))
        mine = [await http.ws_connect(url, headers={"X-Forwarded-For": "203.0.113.7"}) for _ in range(2)]
        async with http.get(url, headers={"X-Forwarded-For": "203.0.113.7", "Connection": "Upgrade",
                                          "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                                          "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as refused:
            assert refused.status == 429
        other = await http.ws_connect(url, headers={"X-Forwarded-For": "203.0.113.8"})  # its own two
        for ws in (*mine, other):
            await ws.close()


async def test_metrics_check_the_direct_peer_not_the_header(
        make_client: Callable[..., Awaitable[TestClient]], config: Config) -> None:
    client = await make_client(behind(config, "127.0.0.1/32", metrics_allow=(ipaddress.ip_network("10.1.1.1/32"),)))
    resp = await client.get("/metrics", headers={"X-Forwarded-For": "10.1.1.1"})
    assert resp.status == 403
