"""An upgraded server finds the day written before offices' keys had a hash tag."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from .conftest import api_users


async def test_keys_without_hash_tag_are_moved_at_start(make_client: Callable[..., Awaitable[TestClient]],
                                                        valkey_url: str, key_prefix: str) -> None:
    first = await make_client()
    async with api_users(str(first.make_url("/"))) as user:
        issued = await user().issue("pickup")
    await first.close()
    # Put every office key back where the previous release kept it: P o:main:… without braces.
    redis = Redis.from_url(valkey_url)
    try:
        tagged = [k async for k in redis.scan_iter(match=f"{key_prefix}o:{{main}}:*")]
        assert len(tagged) > 3, "the office's keys carry its hash tag"
        for key in tagged:
            await redis.rename(key, key.decode().replace("o:{main}:", "o:main:"))

        second = await make_client()
        async with api_users(str(second.make_url("/"))) as user:
            status, ticket = await user().get(f"/api/tickets/{issued['token']}")
            assert status == 200, ticket
            assert ticket["number"] == issued["ticket"]["number"] and ticket["state"] == "waiting"
            status, state = await user().get("/api/offices/main/state")
            assert state["waiting_counts"] == {"pickup": 1}
        assert not [k async for k in redis.scan_iter(match=f"{key_prefix}o:main:*")], "no key left untagged"
        assert len([k async for k in redis.scan_iter(match=f"{key_prefix}o:{{main}}:*")]) == len(tagged)
    finally:
        await redis.aclose()
