"""Limits on what one client may try, kept in Redis so they hold across every server process.

Two kinds:

- ``GuessLimiter``: lookups of a secret or code given by the public (status tokens today, booking
  codes later). Only *misses* count, so visitors looking up their own ticket are never slowed, while
  someone trying tokens is stopped for the rest of the window once they missed too often.
  Key ``P rl:{scope}:{subject}`` (string counter, expires with the window).
- ``FailureThrottle``: failed sign-ins, per user name and per client address. After a few free
  failures each further one makes the next attempt wait longer (2, 4, 8 … s), then the subject is
  locked for a while. Attempts refused meanwhile cost nothing (no password hash is computed).
  Keys ``P signin:u:{digest of the user name}`` and ``P signin:a:{address}`` (hash: ``n`` failures,
  ``until`` epoch ms before which attempts are refused, ``locked`` 1 when locked).

Both answer a refusal with ``RateLimited`` (code ``rate_limited``, HTTP 429) carrying the seconds to
wait, which the web layer sends as ``Retry-After``.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

from redis.asyncio import Redis

from ..clock import Clock
from ..domain.model import DomainError, NotFound

# One step each, so that processes counting the same subject at once never lose a count.
_COUNT_MISS: Final = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""
_COUNT_FAILURE: Final = """
local now, free, lock_after = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local max_delay, lock_ms, window_ms = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
if n >= lock_after then
  -- Locked; once the lock ends the count starts again, so a locked subject is audited once per lock.
  redis.call('HSET', KEYS[1], 'until', now + lock_ms, 'locked', 1, 'n', 0)
  redis.call('PEXPIRE', KEYS[1], math.max(window_ms, lock_ms))
  return {n, lock_ms, 1}
end
local wait = 0
if n > free then
  wait = math.min(1000 * 2 ^ (n - free), max_delay)
  redis.call('HSET', KEYS[1], 'until', now + wait, 'locked', 0)
end
redis.call('PEXPIRE', KEYS[1], math.max(window_ms, wait))
return {n, wait, 0}
"""


class RateLimited(DomainError):
    """A client tried too often; ``retry_after`` says how many seconds to wait."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, code="rate_limited")
        self.retry_after = max(1, retry_after)


@dataclass(frozen=True, slots=True)
class GuessLimit:
    """At most ``misses`` failed lookups per ``window_seconds`` from one subject."""

    misses: int
    window_seconds: int


STATUS_TOKENS: Final = GuessLimit(misses=30, window_seconds=600)
"""A visitor's own status link never misses; 30 unknown tokens in 10 minutes is someone trying."""
BOOKING_CODES: Final = GuessLimit(misses=20, window_seconds=600)
"""Booking codes are typed by hand (the check character catches typos before any lookup), so an
unknown well-formed code is rare: 20 in 10 minutes is someone trying codes (or secret links)."""


class GuessLimiter:
    """Counts a client's misses at looking up a public secret (``scope``: what is looked up)."""

    def __init__(self, redis: Redis, prefix: str, scope: str, limit: GuessLimit, what: str) -> None:
        self.redis = redis
        self.prefix = f"{prefix}rl:{scope}:"
        self.limit = limit
        self.what = what
        self._count = redis.register_script(_COUNT_MISS)

    async def check(self, subject: str) -> None:
        """Refuse (``RateLimited``) while ``subject`` has used up its misses for the window."""
        async with self.redis.pipeline(transaction=False) as pipe:
            count, ttl_ms = await pipe.get(self.prefix + subject).pttl(self.prefix + subject).execute()
        if count is not None and int(count) >= self.limit.misses:
            wait = math.ceil(max(ttl_ms, 0) / 1000)
            raise RateLimited(f"too many unknown {self.what} from your address ({self.limit.misses} in "
                              f"{self.limit.window_seconds // 60} minutes); try again in {max(1, wait)} s", wait)

    async def miss(self, subject: str) -> None:
        """Count one miss."""
        await self._count(keys=[self.prefix + subject], args=[self.limit.window_seconds * 1000])

    @contextlib.asynccontextmanager
    async def guard(self, subject: str) -> AsyncIterator[None]:
        """Check before a lookup; a ``NotFound`` raised by the lookup counts as a miss."""
        await self.check(subject)
        try:
            yield
        except NotFound:
            await self.miss(subject)
            raise


@dataclass(frozen=True, slots=True)
class FailurePolicy:
    """How failures of one subject slow and then lock it."""

    free: int               # failures with no delay (typos)
    lock_after: int         # the failure that locks
    max_delay_seconds: int  # the longest delay before locking
    lock_seconds: int
    window_seconds: int     # failures are forgotten this long after the last one


USER_FAILURES: Final = FailurePolicy(free=3, lock_after=10, max_delay_seconds=60, lock_seconds=900, window_seconds=900)
# One address may be a whole office behind one router, so it gets more room before it is slowed.
ADDRESS_FAILURES: Final = FailurePolicy(free=10, lock_after=40, max_delay_seconds=30, lock_seconds=900,
                                        window_seconds=900)


@dataclass(frozen=True, slots=True)
class Lock:
    """A subject that has just been locked (for the audit trail)."""

    scope: str  # "user" or "address"
    seconds: int


class FailureThrottle:
    """Failed sign-ins per user name and per client address."""

    def __init__(self, redis: Redis, prefix: str, clock: Clock, user: FailurePolicy = USER_FAILURES,
                 address: FailurePolicy = ADDRESS_FAILURES) -> None:
        self.redis = redis
        self.clock = clock  # the office clock, so tests can move time past a delay or a lock
        self.prefix = f"{prefix}signin:"
        self.policies = {"user": user, "address": address}
        self._count = redis.register_script(_COUNT_FAILURE)

    def _keys(self, username: str, address: str) -> dict[str, str]:
        # The user name is kept only as a digest: a password typed into the name field must not
        # sit readable in Redis, and unknown and known names are treated alike (no probing).
        digest = hashlib.sha256(f"{self.prefix}{username}".encode()).hexdigest()[:32]
        return {"user": f"{self.prefix}u:{digest}", "address": f"{self.prefix}a:{address}"}

    async def check(self, username: str, address: str) -> None:
        """Refuse (``RateLimited``) while the user name or the address must wait or is locked."""
        keys = self._keys(username, address)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys.values():
                pipe.hmget(key, "until", "locked")
            answers = await pipe.execute()
        now = self.clock.now_ms()
        for (scope, _), (until, locked) in zip(keys.items(), answers, strict=True):
            if until is not None and int(until) > now:
                wait = math.ceil((int(until) - now) / 1000)
                who = "this user name" if scope == "user" else "your address"
                state = f"locked for {math.ceil(wait / 60)} minutes" if locked else f"wait {wait} s before trying again"
                raise RateLimited(f"too many failed sign-ins for {who}: {state}", wait)

    async def failed(self, username: str, address: str) -> list[Lock]:
        """Count a failure for both; the subjects this failure locked."""
        locks = []
        now = self.clock.now_ms()
        for scope, key in self._keys(username, address).items():
            p = self.policies[scope]
            _n, _wait, locked = await self._count(keys=[key], args=[
                now, p.free, p.lock_after, p.max_delay_seconds * 1000, p.lock_seconds * 1000, p.window_seconds * 1000])
            if locked:
                locks.append(Lock(scope, p.lock_seconds))
        return locks

    async def succeeded(self, username: str) -> None:
        """A right password forgets the user name's failures (the address's stay: it may be guessing others)."""
        await self.redis.delete(self._keys(username, "")["user"])
