"""Registered kiosks: the lobby's ticket machines, known by a device credential instead of their address.

A supervisor registers a kiosk once (``madoguchi add-kiosk NAME --office ID``), which gives a
one-time setup link ``/kiosk/setup/{code}`` (valid ``SETUP_HOURS``). Opened on the kiosk's browser
and confirmed, it becomes a long random device token in an HttpOnly cookie (``ticket_kiosk/setup.py``);
the kiosk's check-ins then count their misses against the kiosk, slowed and never refused
(``ratelimit.KIOSK_MISSES``), instead of against the address every visitor in the lobby shares.
Registering a kiosk again replaces its token (a lost or leaked one); removing it revokes it.

Everything is one hash, ``P kiosks`` (one key, so one slot in a cluster), holding only digests:
``k:{office}/{name}`` → JSON record (office, name, token and setup digests, when, by whom),
``t:{sha256(token)}`` → ``{office}/{name}``, ``s:{sha256(setup code)}`` → ``{office}/{name}``.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any, Final

from redis.asyncio import Redis

from ..clock import Clock
from ..domain.model import DomainError, NotFound

NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
SETUP_HOURS: Final = 24
TOKEN_BYTES: Final = 32  # 256 bits: the token is never typed


@dataclass(frozen=True, slots=True)
class Kiosk:
    """A registered kiosk: its office and name (``id`` is ``office/name``)."""

    office: str
    name: str

    @property
    def id(self) -> str:
        return f"{self.office}/{self.name}"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Kiosks:
    """The registry of kiosks (``P kiosks``)."""

    def __init__(self, redis: Redis, prefix: str, clock: Clock) -> None:
        self.redis = redis
        self.key = f"{prefix}kiosks"
        self.clock = clock

    async def _record(self, kiosk_id: str) -> dict[str, Any] | None:
        raw = await self.redis.hget(self.key, f"k:{kiosk_id}")
        return json.loads(raw) if raw else None

    async def add(self, office: str, name: str, actor: str) -> str:
        """Register (or register again) a kiosk; its one-time setup code. Its old token stops working."""
        if not NAME.match(name):
            raise DomainError(f"a kiosk name is 1–32 letters, digits, - or _ (starting with a letter or digit); "
                              f"got {name!r}", code="invalid_request")
        kiosk = Kiosk(office, name)
        old = await self._record(kiosk.id)
        code = secrets.token_urlsafe(16)
        now = self.clock.now_ms()
        record = {"office": office, "name": name, "token": "", "setup": _digest(code),
                  "setup_until": now + SETUP_HOURS * 3_600_000, "created_at": now, "created_by": actor}
        async with self.redis.pipeline(transaction=True) as pipe:
            if old:
                pipe.hdel(self.key, *(f"{kind}:{old[field]}" for kind, field in (("t", "token"), ("s", "setup"))
                                      if old.get(field)))
            pipe.hset(self.key, mapping={f"k:{kiosk.id}": json.dumps(record), f"s:{record['setup']}": kiosk.id})
            await pipe.execute()
        return code

    async def pending(self, code: str) -> Kiosk:
        """The kiosk a setup code would register (``NotFound`` when unknown, used or expired)."""
        kiosk_id = await self.redis.hget(self.key, f"s:{_digest(code)}")
        record = await self._record(kiosk_id.decode()) if kiosk_id else None
        if record is None or record["setup"] != _digest(code) or record["setup_until"] < self.clock.now_ms():
            raise NotFound("this kiosk setup link is unknown, used or expired; register the kiosk again")
        return Kiosk(record["office"], record["name"])

    async def claim(self, code: str) -> tuple[Kiosk, str]:
        """Use a setup code once: the kiosk and its new device token."""
        kiosk = await self.pending(code)
        if not await self.redis.hdel(self.key, f"s:{_digest(code)}"):
            raise NotFound("this kiosk setup link was just used")
        record = await self._record(kiosk.id) or {}
        token = secrets.token_urlsafe(TOKEN_BYTES)
        old_token = record.get("token")
        record.update(token=_digest(token), setup="", registered_at=self.clock.now_ms())
        async with self.redis.pipeline(transaction=True) as pipe:
            if old_token:
                pipe.hdel(self.key, f"t:{old_token}")
            pipe.hset(self.key, mapping={f"k:{kiosk.id}": json.dumps(record), f"t:{record['token']}": kiosk.id})
            await pipe.execute()
        return kiosk, token

    async def find(self, token: str) -> Kiosk | None:
        """The kiosk of a device token, or None (unknown, revoked, or not a token at all)."""
        if not 20 <= len(token) <= 100:
            return None
        kiosk_id = await self.redis.hget(self.key, f"t:{_digest(token)}")
        if not kiosk_id:
            return None
        office, _, name = kiosk_id.decode().partition("/")
        return Kiosk(office, name)

    async def all(self) -> list[dict[str, Any]]:
        """Every registered kiosk's record (no secrets: digests only), by id."""
        fields = await self.redis.hgetall(self.key)
        records = [json.loads(v) for k, v in fields.items() if k.startswith(b"k:")]
        return sorted(records, key=lambda r: (r["office"], r["name"]))

    async def remove(self, office: str, name: str) -> None:
        """Revoke a kiosk: its token and any setup link stop working."""
        kiosk = Kiosk(office, name)
        record = await self._record(kiosk.id)
        if record is None:
            raise NotFound(f"no kiosk {name!r} at {office}")
        await self.redis.hdel(self.key, f"k:{kiosk.id}", *(f"{kind}:{record[field]}" for kind, field in
                                                            (("t", "token"), ("s", "setup")) if record.get(field)))
