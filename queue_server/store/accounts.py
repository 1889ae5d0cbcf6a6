"""Staff accounts, sign-in sessions and the audit trail of sign-ins, kept in Redis.

Keys: ``P users`` (hash: user name → JSON with role and argon2 hash), ``P sess:{id}`` (JSON,
expires), ``P audit`` (stream of sign-ins, sign-outs and account changes).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from redis.asyncio import Redis

from ..domain.model import DomainError, Role

SESSION_SECONDS: Final = 12 * 3600
USERNAME: Final = re.compile(r"^[A-Za-z0-9._-]{1,32}$")
MIN_PASSWORD: Final = 8


@dataclass(frozen=True, slots=True)
class Staff:
    """A signed-in staff member."""

    username: str
    role: Role
    display_name: str
    csrf: str = ""
    session: str = ""


class Accounts:
    """Staff users and their sessions."""

    def __init__(self, redis: Redis, prefix: str = "mg:") -> None:
        self.redis = redis
        self.prefix = prefix
        self._hasher = PasswordHasher()

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
        record = {"role": role.value, "display_name": display_name or username, "hash": self._hasher.hash(password)}
        await self.redis.hset(f"{self.prefix}users", username, json.dumps(record))
        await self.audit("system", "user.saved", user=username, role=role.value)

    async def sign_in(self, username: str, password: str) -> Staff | None:
        """A new session for the right password, else None (the same answer for unknown users)."""
        raw = await self.redis.hget(f"{self.prefix}users", username)
        record = json.loads(raw) if raw else None
        try:
            if record is None:
                # Spend the same time as a real check so user names can't be probed by timing.
                self._hasher.hash(password)
                raise VerificationError
            self._hasher.verify(record["hash"], password)
        except (VerificationError, InvalidHashError):
            await self.audit(username, "sign_in.failed")
            return None
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
