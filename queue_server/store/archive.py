"""Reading the visit archive: the month streams ``O arch:{YYYYMM}`` the Lua steps append to.

The records are written by ``lua/archive.lua`` in the same step that ends a visit (or a task, or a
booking); this module only reads them, month by month, in chunks, for the reports and the export.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from typing import Any, Final

from redis.asyncio import Redis

CHUNK: Final = 10_000
"""Entries read per step: large enough to be quick, small enough to keep one step short (~10 ms)."""
READ_CHUNK_LUA: Final = """
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', tonumber(ARGV[2]))
local out = {}
for i, entry in ipairs(entries) do out[i] = entry[2][2] end
return {#entries > 0 and entries[#entries][1] or '', table.concat(out, ',')}
"""
"""One chunk of a month's stream as ``[last id, "record,record,…"]``: one bulk string the client
parses as one JSON array, instead of five RESP items per entry (redis-py's parser is pure Python:
it took three quarters of a year's report)."""

Record = dict[str, Any]


def month_range(first: str, last: str) -> list[str]:
    """Every month ``YYYYMM`` from ``first`` to ``last`` inclusive (both ``YYYYMM``)."""
    year, month = int(first[:4]), int(first[4:6])
    months: list[str] = []
    while f"{year:04d}{month:02d}" <= last:
        months.append(f"{year:04d}{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


class Archive:
    """The archived records of every office, read from the store's Redis."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._read_chunk = redis.register_script(READ_CHUNK_LUA)

    def _office_key(self, office: str) -> str:
        return f"{self.prefix}o:{{{office}}}:"

    async def months(self, office: str) -> list[str]:
        """The months (``YYYYMM``) the office's archive holds, oldest first."""
        return [m.decode() for m in await self.redis.zrange(self._office_key(office) + "archmonths", 0, -1)]

    async def chunks(self, offices: Iterable[str], months: Iterable[str]) -> AsyncIterator[list[Record]]:
        """Every record of ``offices`` in ``months`` (``YYYYMM``), in lists of up to CHUNK, oldest first per
        office and month: a caller that folds each list into its figures never holds the whole year."""
        month_list = list(months)
        for office in offices:
            for month in month_list:
                key = self._office_key(office) + "arch:" + month
                start = "-"
                while True:
                    last, joined = await self._read_chunk(keys=[key], args=[start, CHUNK])
                    if not joined:
                        break
                    records: list[Record] = json.loads(b"[" + joined + b"]")
                    yield records
                    if len(records) < CHUNK:
                        break
                    start = "(" + last.decode()

    async def records(self, offices: Iterable[str], months: Iterable[str],
                      kinds: frozenset[str] | None = None) -> AsyncIterator[Record]:
        """Every record of ``offices`` in ``months`` (``YYYYMM``), oldest first per office and month;
        only ``kinds`` (visit, task, booking) when given."""
        async for chunk in self.chunks(offices, months):
            for record in chunk:
                if kinds is None or record.get("kind") in kinds:
                    yield record

    async def memory_usage(self, office: str, month: str) -> int:
        """Bytes Redis uses for one month's stream (MEMORY USAGE with every entry sampled)."""
        used = await self.redis.memory_usage(self._office_key(office) + "arch:" + month, samples=0)
        return int(used or 0)
