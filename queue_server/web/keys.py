"""Typed keys of the app's shared resources (opened and closed in ``cleanup_ctx``)."""

from __future__ import annotations

from typing import Final

from aiohttp import web
from redis.asyncio import Redis

from ..clock import Clock
from ..config import Config
from ..estimates import EstimateService
from ..live import Hub
from ..store.accounts import Accounts
from ..store.bookings import Bookings
from ..store.embedded import EmbeddedRedis
from ..store.kiosks import Kiosks
from ..store.ratelimit import MissPacer
from ..store.redis_store import QueueStore

CONFIG: Final = web.AppKey("config", Config)
CLOCK: Final = web.AppKey("clock", Clock)
REDIS: Final = web.AppKey("redis", Redis)
STORE: Final = web.AppKey("store", QueueStore)
ACCOUNTS: Final = web.AppKey("accounts", Accounts)
HUB: Final = web.AppKey("hub", Hub)
ESTIMATES: Final = web.AppKey("estimates", EstimateService)
EMBEDDED: Final = web.AppKey("embedded_valkey", EmbeddedRedis)
"""Only set when the server runs its own Valkey (no ``redis_url``)."""
TOKEN_GUESSES: Final = web.AppKey("token_guesses", MissPacer)
"""Misses at looking up status tokens, per client address (any public secret lookup goes through one)."""
BOOKINGS: Final = web.AppKey("bookings", Bookings)
BOOKING_GUESSES: Final = web.AppKey("booking_guesses", MissPacer)
"""Misses at looking up booking codes and secret links, per registered kiosk or client address (slowed, never locked)."""
KIOSKS: Final = web.AppKey("kiosks", Kiosks)
"""The registered kiosks (device credentials)."""
WORKER: Final = web.AppKey[int | None]("worker")
"""This process's index under ``serve --workers N``; None when it is the only server process."""
