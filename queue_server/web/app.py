"""The app factory: one ``init_app`` used by the CLI and the tests."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..clock import Clock
from ..config import Config
from ..domain.model import DomainError
from ..estimates import BUSY_SHARE, EstimateService
from ..live import Hub
from ..store.accounts import Accounts
from ..store.embedded import EmbeddedRedis
from ..service_times import MeasuredServiceMinutes
from ..store.bookings import Bookings
from ..store.ratelimit import BOOKING_CODES, STATUS_TOKENS, GuessLimiter
from ..store.redis_store import DEFAULT_PREFIX, QueueStore
from .auth import UNSAFE_METHODS, origin_allowed
from .keys import (ACCOUNTS, BOOKING_GUESSES, BOOKINGS, CLOCK, CONFIG, EMBEDDED, ESTIMATES, HUB, REDIS, STORE,
                   TOKEN_GUESSES, WORKER)
from .messages import ApiError, error_response
from .metrics import METRICS, setup_metrics
from .pages import setup_pages
from .routes import setup_routes
from .ws import CONNECTIONS, PER_ADDRESS, close_connections

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WORKER_HEADER: Final = "Madoguchi-Worker"
POOL_WAIT_SECONDS: Final = 5
"""How long a request waits for a free Redis connection before it is answered 503."""


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn domain errors into JSON answers with one error vocabulary; Redis outages into 503."""
    try:
        if request.method in UNSAFE_METHODS and not origin_allowed(request):
            raise ApiError("origin_not_allowed", f"requests from {request.headers['Origin']} are not allowed")
        return await handler(request)
    except DomainError as e:
        return error_response(e)
    except (RedisConnectionError, RedisTimeoutError) as e:
        log.warning("Redis unavailable: %s", e)
        request.app[METRICS].store_errors.labels("request").inc()
        return error_response(ApiError("unavailable", "the queue store is unavailable; try again in a moment"))
    except web.HTTPException as e:
        if e.status >= 400 and request.path.startswith("/api/"):
            code = {404: "not_found", 405: "invalid_request", 413: "invalid_request"}.get(e.status, "invalid_request")
            response = error_response(ApiError(code, e.reason))
            response.set_status(e.status)
            # A 405 must say which methods the path takes (RFC 9110), and a 413 may say when to retry.
            for name in ("Allow", "Retry-After"):
                if name in e.headers:
                    response.headers[name] = e.headers[name]
            return response
        raise


async def _name_worker(request: web.Request, response: web.StreamResponse) -> None:
    """Say which worker answered (``serve --workers``): an operator behind a proxy, and the tests, can tell."""
    response.headers[WORKER_HEADER] = str(request.app[WORKER])


def init_app(config: Config, *, clock: Clock | None = None, redis_url: str | None = None,
             key_prefix: str = DEFAULT_PREFIX, worker: int | None = None, workers: int = 1) -> web.Application:
    """Build the application; Redis, the embedded server and the hub open in ``cleanup_ctx``.

    ``worker``: this process's index among ``workers`` processes of ``serve --workers`` (None: the only one).
    """
    app = web.Application(middlewares=[errors_middleware], client_max_size=64 * 1024)
    app[CONFIG] = config
    app[WORKER] = worker
    if worker is not None:
        app.on_response_prepare.append(_name_worker)
    app[CLOCK] = clock or Clock(config.server.timezone)

    async def storage(app: web.Application) -> AsyncIterator[None]:
        url = redis_url or config.server.redis_url
        embedded = None
        if not url:
            embedded = EmbeddedRedis(config.server.data_dir)
            await embedded.start()
            embedded.supervise()
            app[EMBEDDED] = embedded
            url = embedded.url
        # A burst of requests beyond the pool waits its turn for a connection (a few seconds at most)
        # rather than failing with 503: 200 visitors booking at once must each get an answer.
        pool = BlockingConnectionPool.from_url(url, max_connections=64, timeout=POOL_WAIT_SECONDS,
                                               health_check_interval=30)
        redis = Redis.from_pool(pool)  # closed with the client
        app[REDIS] = redis
        app[STORE] = QueueStore(redis, config, app[CLOCK], prefix=key_prefix)
        await app[STORE].move_untagged_keys()
        app[ACCOUNTS] = Accounts(redis, prefix=key_prefix, clock=app[CLOCK])
        app[TOKEN_GUESSES] = GuessLimiter(redis, key_prefix, "token", STATUS_TOKENS, "status links")
        app[BOOKING_GUESSES] = GuessLimiter(redis, key_prefix, "booking", BOOKING_CODES, "booking codes or links")
        app[BOOKINGS] = Bookings(app[STORE], service_minutes=MeasuredServiceMinutes(app[STORE]).minutes)
        app[HUB] = Hub(app[STORE])
        await app[HUB].start()
        # Each worker estimates for its own displays; together they take the CPU one process would.
        app[ESTIMATES] = EstimateService(app[HUB], app[STORE], busy_share=BUSY_SHARE / workers)
        app[ESTIMATES].start()
        app[ESTIMATES].timed.append(app[METRICS].estimated)
        app[METRICS].follow(app[HUB])
        try:
            yield
        finally:
            await app[ESTIMATES].stop()
            await app[HUB].stop()
            app[ACCOUNTS].close()
            await redis.aclose()
            if embedded is not None:
                await embedded.stop()

    app.cleanup_ctx.append(storage)
    app[CONNECTIONS] = set()
    app[PER_ADDRESS] = {}
    setup_metrics(app, app[CONNECTIONS])
    app.on_shutdown.append(close_connections)
    setup_routes(app)
    setup_pages(app)
    return app
