"""The store's Valkey Functions library: loaded once, reloaded where missing, no per-call state in the
chunk, status tokens under their office, events on the office's sharded channel."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from importlib import resources
from typing import Any

from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from queue_server.clock import Clock
from queue_server.config import Config
from queue_server.store import scripts
from queue_server.store.redis_store import QueueStore
from queue_server.web.keys import STORE

from .conftest import Api
from .waiting import PATIENCE_S

# At the top of a module (column 0, the areas' `do` blocks are not indented): constants, the ops and
# lib tables and the op registry (filled as the library loads), functions. A per-call value there would be an upvalue shared by calls.
CHUNK_LOCAL = re.compile(r"^local (function \w+|[A-Z][A-Z0-9_]*(, [A-Z][A-Z0-9_]*)*|ops|op_names|op_flags|lib)\b")


def test_the_library_chunk_keeps_no_per_call_state() -> None:
    lua = resources.files("queue_server.store").joinpath("lua")
    found = []
    for name in scripts.MODULES:
        for n, line in enumerate(lua.joinpath(f"{name}.lua").read_text("utf-8").splitlines(), 1):
            if line.startswith("local ") and not CHUNK_LOCAL.match(line):
                found.append(f"{name}.lua:{n}: {line}")
            # The request and the call's keys reach a step only through its context `s`.
            if re.search(r"\b(ARGV|KEYS)\b", line.split("--")[0]):
                found.append(f"{name}.lua:{n}: {line}")
    assert found == []
    source = scripts.source()
    assert source.startswith("#!lua name=madoguchi\n")
    assert "PUBLISH" not in source.replace("SPUBLISH", "")  # events only on the office's own channel


async def test_a_node_without_the_library_gets_it_and_the_step_runs(
        config: Config, valkey_url: str, key_prefix: str) -> None:
    redis = Redis.from_url(valkey_url)
    store = QueueStore(redis, config, Clock(config.server.timezone), prefix=key_prefix)
    try:
        await redis.function_flush()  # as a restarted Valkey without persistence, or a new primary
        issued = await store.issue("main", "pickup")
        assert issued["ticket"]["state"] == "waiting"
        assert (await redis.fcall("mg_version", 0)).decode() == scripts.version()
        (library,) = await redis.function_list(library="madoguchi")
        functions = dict(zip(library[::2], library[1::2], strict=True))[b"functions"]
        described = [dict(zip(f[::2], f[1::2], strict=True)) for f in functions]
        flags = {d[b"name"].decode(): {x.decode() for x in d[b"flags"]} for d in described}
        assert {"mg_issue", "mg_call_next", "mg_start_day", "mg_snapshot", "mg_version"} <= set(flags)
        # Only the steps that truly write nothing say so (a new day is begun by mg_start_day).
        assert {name for name, f in flags.items() if "no-writes" in f} == {"mg_snapshot", "mg_version"}
    finally:
        await store.load_functions()
        await redis.aclose()


async def test_every_step_of_the_office_is_routed_by_its_evseq_key(
        config: Config, valkey_url: str, key_prefix: str) -> None:
    """KEYS[1] is `O evseq`; the step's keys are all under O, and a call without it changes nothing."""
    redis = Redis.from_url(valkey_url)
    store = QueueStore(redis, config, Clock(config.server.timezone), prefix=key_prefix)
    try:
        await store.issue("main", "pickup")
        keys = {k.decode() async for k in redis.scan_iter(match=f"{key_prefix}*")}
        assert keys and all(k.startswith(store.office_key("main")) for k in keys), keys
        answer = json.loads(await redis.fcall("mg_issue", 1, f"{key_prefix}elsewhere", json.dumps({"now": 1})))
        assert answer == {"err": "bad_routing_key", "op": "issue"}
    finally:
        await redis.aclose()


async def test_a_new_status_token_names_its_office_and_lives_under_it(
        client: TestClient, visitor: Api, key_prefix: str) -> None:
    issued = await visitor.issue("pickup")
    office, _, random = issued["token"].partition(".")
    assert office == "main" and len(random) >= 22
    redis = client.app[STORE].redis
    key = f"{key_prefix}o:{{main}}:tok:{random}"
    assert (await redis.get(key)).decode() == f"{issued['ticket']['day']}|{issued['ticket']['number']}"
    assert 259_000 < await redis.ttl(key) <= 259_200
    assert [k async for k in redis.scan_iter(match=f"{key_prefix}tok:*")] == []  # no global key any more
    status, view = await visitor.get(f"/api/tickets/{issued['token']}")
    assert status == 200 and view["number"] == issued["ticket"]["number"]
    page = await visitor.http.get(f"/status/{issued['token']}")
    assert page.status == 200
    qr = await visitor.http.get(f"/kiosk/qr/{issued['token']}.svg")
    assert qr.status == 200 and qr.content_type == "image/svg+xml"


async def test_a_token_from_before_the_upgrade_still_finds_its_ticket(
        client: TestClient, visitor: Api, key_prefix: str) -> None:
    issued = await visitor.issue("pickup")
    old = secrets.token_urlsafe(16)  # no office in it, kept under the global key as the old code did
    ticket = issued["ticket"]
    await client.app[STORE].redis.set(f"{key_prefix}tok:{old}", f"main|{ticket['day']}|{ticket['number']}", ex=259200)
    status, view = await visitor.get(f"/api/tickets/{old}")
    assert status == 200 and view["number"] == ticket["number"]
    status, body = await visitor.post(f"/api/tickets/{old}/cancel")
    assert status == 200, body
    assert (await visitor.get(f"/api/tickets/{issued['token']}"))[1]["state"] == "cancelled"


async def test_a_token_of_an_unknown_office_or_random_is_not_found(client: TestClient, visitor: Api) -> None:
    issued = await visitor.issue("pickup")
    random = issued["token"].partition(".")[2]
    for token in (f"nowhere.{random}", f"main.{secrets.token_urlsafe(16)}", f".{random}", f"main.{random}x"):
        status, body = await visitor.get(f"/api/tickets/{token}")
        assert status == 404, (token, body)


async def test_events_are_announced_on_the_offices_own_sharded_channel(
        config: Config, valkey_url: str, key_prefix: str) -> None:
    redis = Redis.from_url(valkey_url)
    store = QueueStore(redis, config, Clock(config.server.timezone), prefix=key_prefix)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.ssubscribe(store.events_channel("main"))
        issued = await store.issue("main", "pickup")
        message: dict[str, Any] | None = None
        deadline = asyncio.get_running_loop().time() + PATIENCE_S
        while message is None and asyncio.get_running_loop().time() < deadline:
            message = await pubsub.get_message(timeout=PATIENCE_S)
        assert message is not None, "no event on the office's channel"
        assert message["type"] == "smessage" and message["channel"].decode() == f"{key_prefix}o:{{main}}:events"
        assert json.loads(message["data"]) == issued["event"]
    finally:
        await pubsub.aclose()
        await redis.aclose()
