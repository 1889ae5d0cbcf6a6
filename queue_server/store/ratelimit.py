"""Limits on what one client may try, kept in Redis so they hold across every server process.

Two kinds:

- ``MissPacer``: booking codes and booking links typed or scanned at a kiosk or on a phone, and
  status links. Misses slow the subject down and never lock it: a registered kiosk
  (``store/kiosks.py``) has its answers to misses held a moment (at most 1 s, 2 s once abnormal), an
  address is asked to wait a growing time (429 with ``Retry-After``, at most 30 s) before its next
  lookup. ARCHITECTURE.md, "Guessing booking codes", has the numbers. Keys
  ``P rl:bk:k:{office}/{kiosk}``, ``P rl:bk:a:{address}`` and (status links, by address only)
  ``P rl:st:a:{address}`` (hash: ``n`` misses in a row, ``until`` epoch ms before which the next
  lookup waits, ``w`` misses in the window that began at ``ws``, ``alerted``).
- ``FailureThrottle``: failed sign-ins, per user name and per client address. After a few free
  failures each further one makes the next attempt wait longer (2, 4, 8 … s), then the subject is
  locked for a while. Attempts refused meanwhile cost nothing (no password hash is computed).
  Keys ``P signin:u:{digest of the user name}`` and ``P signin:a:{address}`` (hash: ``n`` failures,
  ``until`` epoch ms before which attempts are refused, ``locked`` 1 when locked).

Both answer a refusal with ``RateLimited`` (code ``rate_limited``, HTTP 429) carrying the seconds to
wait, which the web layer sends as ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Final

from redis.asyncio import Redis

from ..clock import Clock
from ..domain.model import DomainError, NotFound

log = logging.getLogger(__name__)

# One step each, so that processes counting the same subject at once never lose a count.
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


# -- booking codes: slowed, never locked ------------------------------------------------------------

# "try" reserves the attempt's place in one step: it counts as a miss in advance (concurrent tries see
# each other), waits for the delay earlier misses left, and leaves its own delay for the next one.
# "hit" gives the advance count back (and for a kiosk forgets the misses in a row).
_PACE: Final = """
local key, op, now = KEYS[1], ARGV[1], tonumber(ARGV[2])
if op == 'hit' then
  if redis.call('EXISTS', key) == 0 then return 0 end
  local h = redis.call('HMGET', key, 'n', 'w', 'until')
  local n, w = math.max((tonumber(h[1]) or 1) - 1, 0), math.max((tonumber(h[2]) or 1) - 1, 0)
  if ARGV[3] == '1' then n = 0 end
  redis.call('HSET', key, 'n', n, 'w', w)
  -- this attempt's own delay is not owed: it found something
  if tonumber(h[3]) == tonumber(ARGV[4]) and tonumber(h[3]) > now then redis.call('HSET', key, 'until', now) end
  return 1
end
local free, first, cap, abnormal = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local window, alert_after, max_wait = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local h = redis.call('HMGET', key, 'n', 'until', 'w', 'ws', 'alerted')
local n, till, w, ws = tonumber(h[1]) or 0, tonumber(h[2]) or 0, tonumber(h[3]) or 0, tonumber(h[4]) or now
local alerted = h[5] == '1'
if now - ws >= window then w, ws, alerted = 0, now, false end
-- a clock set back (tests, a corrected server clock) must not leave a wait of hours
till = math.min(till, now + max_wait + math.max(cap, abnormal))
local start = math.max(now, till)
if start - now > max_wait then return {0, start - now, 0, n, 0, 0} end
n, w = n + 1, w + 1
local delay = 0
if alert_after > 0 and w > alert_after then delay = abnormal
elseif n > free then delay = math.min(first * 2 ^ (n - free - 1), cap) end
-- Only a delay moves `until`: concurrent requests are stamped by the server's clock before they
-- reach Valkey, so one stamped a millisecond earlier may arrive second and must not take the
-- other's stamp for a wait (a 429 to an honest client's parallel requests).
if delay > 0 then till = start + delay end
local alert = 0
if alert_after > 0 and w > alert_after and not alerted then alert, alerted = 1, true end
redis.call('HSET', key, 'n', n, 'until', till, 'w', w, 'ws', ws, 'alerted', alerted and 1 or 0)
redis.call('PEXPIRE', key, math.max(window, till - now))
return {1, start - now, delay, n, alert, till}
"""


@dataclass(frozen=True, slots=True)
class PacePolicy:
    """How misses slow one subject down (``MissPacer``)."""

    free: int                 # misses in a row answered with no delay (typos)
    first_ms: int             # the delay of the first miss beyond ``free``; each further one doubles it
    cap_ms: int               # the longest delay
    window_seconds: int       # misses are forgotten this long after the last one
    hold: bool                # True: the server holds the answer to a miss (a kiosk never sees a refusal);
                              # False: the next lookup before the delay ends is refused 429 with Retry-After
    reset_on_hit: bool        # True: a hit forgets the misses in a row (the kiosk's next visitor starts afresh)
    alert_after: int = 0      # more misses than this in one window are abnormal: audited once, each held abnormal_ms
    abnormal_ms: int = 0
    max_wait_ms: int = 0      # an attempt queued longer than this behind others' delays is refused (429)
    reserve: bool = True      # True: each attempt is counted before its lookup and a hit gives it back (concurrent
                              # tries are paced too; two writes per lookup); False (needs hold False): an attempt
                              # only reads whether a wait is owed, and only a miss writes


KIOSK_MISSES: Final = PacePolicy(free=5, first_ms=125, cap_ms=1000, window_seconds=600, hold=True,
                                 reset_on_hit=True, alert_after=30, abnormal_ms=2000, max_wait_ms=10_000)
"""A registered kiosk: one visitor's typos cost them at most a second each, the next visitor nothing.
Only concurrent requests with one kiosk's credential (a script, not a person at a keypad) ever queue."""
ADDRESS_MISSES: Final = PacePolicy(free=10, first_ms=1000, cap_ms=30_000, window_seconds=600, hold=False,
                                   reset_on_hit=False)
"""Any other client, by address (guest Wi-Fi and carrier NAT put many phones behind one): 10 misses
free, then the address waits 1, 2, 4 … s (at most 30 s) before its next lookup. A hit is not counted
but does not forget misses (else a guesser would mix in a code of their own)."""
STATUS_LINK_MISSES: Final = replace(ADDRESS_MISSES, reserve=False)
"""Status links, by address: the same waits, but a lookup that finds its ticket writes nothing. Every
phone looks its ticket up at each page load and reconnect, and 128-bit tokens are not guessed in any
case; as with the old lockout, a burst sent at once is looked up before its misses count."""


@dataclass(frozen=True, slots=True)
class Subject:
    """Who is guessing: a registered kiosk (``kind`` ``kiosk``, ``id`` ``office/name``) or an address."""

    kind: str  # "kiosk" or "address"
    id: str


Alert = Callable[[Subject, int], Awaitable[None]]
"""Called once a window when a subject's misses become abnormal (the audit trail)."""


class MissPacer:
    """Slows down misses at looking up a secret (booking codes and links; status links), per kiosk or per address.

    ``scope`` names what is looked up in the keys (``bk`` booking codes, ``st`` status links)."""

    def __init__(self, redis: Redis, prefix: str, clock: Clock, what: str,
                 policies: Mapping[str, PacePolicy] | None = None, alert: Alert | None = None, scope: str = "bk") -> None:
        self.redis = redis
        self.prefix = f"{prefix}rl:{scope}:"
        self.clock = clock  # the office clock: tests move it past an address's delay
        self.what = what
        self.policies = dict(policies or {"kiosk": KIOSK_MISSES, "address": ADDRESS_MISSES})
        self.alert = alert
        self._pace = redis.register_script(_PACE)

    def key(self, subject: Subject) -> str:
        """The subject's Redis key."""
        return f"{self.prefix}{subject.kind[0]}:{subject.id}"

    @contextlib.asynccontextmanager
    async def guard(self, subject: Subject) -> AsyncIterator[None]:
        """Around one lookup: wait for (or, for an address, refuse within) an earlier miss's delay;
        a ``NotFound`` from the lookup is a miss and is answered after its delay (kiosk) or says the
        delay as ``retry_after`` (address). Without ``reserve`` only a miss writes."""
        policy, key = self.policies[subject.kind], self.key(subject)
        if not policy.reserve:
            owed = await self.redis.hget(key, "until")
            self._refuse_within(policy, int(float(owed or 0)) - self.clock.now_ms())
            try:
                yield
            except NotFound as miss:
                delay_ms = (await self._try(key, policy, max(policy.max_wait_ms, policy.cap_ms)))[2]
                if delay_ms:
                    miss.retry_after = math.ceil(delay_ms / 1000)  # type: ignore[attr-defined]  # 404 + Retry-After
                raise
            return
        ok, wait_ms, delay_ms, misses, alert, until = await self._try(key, policy, policy.max_wait_ms)
        if not ok:
            self._refuse_within(policy, wait_ms)
        if alert:
            log.warning("%s %s: %d unknown %s in %d minutes", subject.kind, subject.id, misses, self.what,
                        policy.window_seconds // 60)
            if self.alert is not None:
                await self.alert(subject, policy.alert_after + 1)
        if wait_ms > 0:
            await asyncio.sleep(wait_ms / 1000)  # only a held kiosk attempt queued behind another's miss
        try:
            yield
        except NotFound as miss:
            if policy.hold:
                await asyncio.sleep(max(0, until - self.clock.now_ms()) / 1000)
            elif delay_ms:
                miss.retry_after = math.ceil(delay_ms / 1000)  # type: ignore[attr-defined]  # 404 + Retry-After
            raise
        except Exception:
            await self._hit(key, policy, until)  # not a miss (a refusal of a found booking, an outage)
            raise
        else:
            await self._hit(key, policy, until)

    async def _try(self, key: str, policy: PacePolicy, max_wait_ms: int) -> list[int]:
        """Count an attempt as a miss: [ok, wait ms, its delay ms, misses in a row, alert, until]."""
        return await self._pace(keys=[key], args=[
            "try", self.clock.now_ms(), policy.free, policy.first_ms, policy.cap_ms, policy.abnormal_ms,
            policy.window_seconds * 1000, policy.alert_after, max_wait_ms])

    def _refuse_within(self, policy: PacePolicy, wait_ms: int) -> None:
        """429 while an earlier miss's wait (``wait_ms`` left) is owed."""
        if wait_ms > 0:
            raise RateLimited(f"too many unknown {self.what} from {'this kiosk' if policy.hold else 'your address'}; "
                              f"try again in {math.ceil(wait_ms / 1000)} s", math.ceil(wait_ms / 1000))

    async def _hit(self, key: str, policy: PacePolicy, until: int) -> None:
        await self._pace(keys=[key], args=["hit", self.clock.now_ms(), int(policy.reset_on_hit), until])
