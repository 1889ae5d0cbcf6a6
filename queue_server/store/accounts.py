"""Staff accounts, sign-in sessions and the audit trail of sign-ins, kept in Redis.

Keys: ``P users`` (hash: user name → JSON with role and argon2 hash), ``P sess:{id}`` (JSON,
expires), ``P audit`` (stream of sign-ins, sign-outs and account changes), and the failed sign-in
counters of ``ratelimit.FailureThrottle``.

Argon2 is slow on purpose (tens of milliseconds of CPU on 4 threads and 64 MiB per check), so it
runs in a small thread pool (argon2-cffi releases the GIL) at a lower CPU priority, never on the
event loop: on a small machine a stream of checks must not take the cores calls and tickets need.
A flood of sign-ins beyond what the pool can queue is refused at once rather than piled up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from redis.asyncio import Redis

from ..clock import Clock
from ..domain.model import DomainError, Role
from .ratelimit import FailureThrottle

SESSION_SECONDS: Final = 12 * 3600
USERNAME: Final = re.compile(r"^[A-Za-z0-9._-]{1,32}$")
MIN_PASSWORD: Final = 8
HASH_THREADS: Final = 2       # password checks at once (each takes 64 MiB)
HASH_BACKLOG: Final = 8       # checks that may wait for a thread before more are refused
HASH_NICENESS: Final = 10     # below requests and calls, as the estimates worker
UNKNOWN_USER: Final = "(unknown)"
"""The audit trail's actor for a failed sign-in with a name that is no account: what was typed
there may be a password, so it is never kept."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Staff:
    """A signed-in staff member."""

    username: str
    role: Role
    display_name: str
    csrf: str = ""
    session: str = ""


def _lower_priority() -> None:
    """Lower this pool thread's CPU priority; argon2's own threads, started from it, inherit it.

    On Linux a thread id names one thread to setpriority; elsewhere the pool keeps normal priority.
    """
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICENESS)


class Accounts:
    """Staff users and their sessions."""

    def __init__(self, redis: Redis, prefix: str = "mg:", clock: Clock | None = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.throttle = FailureThrottle(redis, prefix, clock or Clock())
        self._hasher = PasswordHasher()
        self._hash_pool = ThreadPoolExecutor(HASH_THREADS, thread_name_prefix="argon2", initializer=_lower_priority)
        self._hash_slots = asyncio.Semaphore(HASH_THREADS + HASH_BACKLOG)

    def close(self) -> None:
        """Stop the hashing threads (at shutdown)."""
        self._hash_pool.shutdown(wait=False, cancel_futures=True)

    async def _off_loop(self, work: Callable[..., T], *args: object) -> T:
        """Run a password hash or check in the pool; refuse at once when its backlog is full."""
        if self._hash_slots.locked():
            raise DomainError("too many sign-ins at once; try again in a moment", code="unavailable")
        async with self._hash_slots:
            return await asyncio.get_running_loop().run_in_executor(self._hash_pool, work, *args)

    def _check_password(self, record: dict[str, str] | None, password: str) -> bool:
        """Whether ``password`` is right (run in the pool)."""
        try:
            if record is None:
                # Spend the same time as a real check so user names can't be probed by timing.
                self._hasher.hash(password)
                return False
            return self._hasher.verify(record["hash"], password)
        except (VerificationError, InvalidHashError):
            return False

    async def audit(self, actor: str, action: str, **details: str) -> None:
        """Record who did what, when."""
        await self.redis.xadd(f"{self.prefix}audit", {"at": str(int(time.time() * 1000)), "actor": actor,
                                                      "action": action, **details}, maxlen=100000, approximate=True)

    async def add_user(self, username: str, password: str, role: Role, display_name: str = "") -> None:
        """Create or replace a staff user."""
        if not USERNAME.match(username):
            raise DomainError("user name must be 1–32 of A-Z a-z 0-9 . _ -", code="invalid_request")
        if len(password) < MIN_PASSWORD:
            raise DomainError(f"password must be at least {MIN_PASSWORD} characters", code="invalid_request")
        # Off the loop too, but not through the sign-in pool: saving an account is an administrator's
        # (or the test set-up's) step, never the public's, and should not wait behind a flood.
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        record = {"role": role.value, "display_name": display_name or username, "hash": password_hash}
        await self.redis.hset(f"{self.prefix}users", username, json.dumps(record))
        await self.audit("system", "user.saved", user=username, role=role.value)

    async def sign_in(self, username: str, password: str, address: str = "") -> Staff | None:
        """A new session for the right password, else None (the same answer for unknown users).

        Too many failures for the user name or from ``address`` refuse further attempts for a while
        (``RateLimited``) before any password is checked.
        """
        await self.throttle.check(username, address)
        raw = await self.redis.hget(f"{self.prefix}users", username) if USERNAME.match(username) else None
        record = json.loads(raw) if raw else None
        if not await self._off_loop(self._check_password, record, password):
            actor = username if record is not None else UNKNOWN_USER
            await self.audit(actor, "sign_in.failed", address=address)
            for lock in await self.throttle.failed(username, address):
                await self.audit(actor, "sign_in.locked", scope=lock.scope, seconds=str(lock.seconds), address=address)
            return None
        await self.throttle.succeeded(username)
        staff = Staff(username=username, role=Role(record["role"]), display_name=record["display_name"],
                      csrf=secrets.token_urlsafe(24), session=secrets.token_urlsafe(32))
        await self.redis.set(f"{self.prefix}sess:{staff.session}", json.dumps(
            {"username": username, "role": staff.role.value, "display_name": staff.display_name, "csrf": staff.csrf}),
            ex=SESSION_SECONDS)
        await self.audit(username, "sign_in")
        return staff

    async def session(self, session_id: str) -> Staff | None:
        """The staff member of a live session."""
        raw = await self.redis.get(f"{self.prefix}sess:{session_id}")
        if raw is None:
            return None
        data = json.loads(raw)
        return Staff(username=data["username"], role=Role(data["role"]), display_name=data["display_name"],
                     csrf=data["csrf"], session=session_id)

    async def sign_out(self, staff: Staff) -> None:
        """End a session."""
        await self.redis.delete(f"{self.prefix}sess:{staff.session}")
        await self.audit(staff.username, "sign_out")
