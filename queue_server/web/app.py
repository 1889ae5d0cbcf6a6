"""The app factory: one ``init_app`` used by the CLI and the tests."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
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
from ..store.connect import close as close_client
from ..store.connect import connect
from ..store.kiosks import Kiosks
from ..store.ratelimit import STATUS_LINK_MISSES, MissPacer, Subject
from ..store.redis_store import DEFAULT_PREFIX, QueueStore
from .auth import UNSAFE_METHODS, origin_allowed
from .keys import (ACCOUNTS, BOOKING_GUESSES, BOOKINGS, CLOCK, CONFIG, EMBEDDED, ESTIMATES, HUB, KIOSKS, REDIS,
                   STORE, TOKEN_GUESSES, WORKER)
from .messages import ApiError, error_response
from .metrics import METRICS, setup_metrics
from .pages import setup_pages
from .routes import setup_routes
from .ws import CONNECTIONS, PER_ADDRESS, close_connections

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WORKER_HEADER: Final = "Madoguchi-Worker"


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
        url = redis_url
        embedded = None
        if not url and config.server.deployment == "embedded":
            embedded = EmbeddedRedis(config.server.data_dir)
            await embedded.start()
            embedded.supervise()
            app[EMBEDDED] = embedded
            url = embedded.url
        redis = connect(config.server, url)  # the configured deployment's client (store/connect.py)
        app[REDIS] = redis
        app[STORE] = QueueStore(redis, config, app[CLOCK], prefix=key_prefix)
        await app[STORE].move_untagged_keys()
        await app[STORE].load_functions()  # before any step: this server's own version of the library
        app[ACCOUNTS] = Accounts(redis, prefix=key_prefix, clock=app[CLOCK])
        # Status links are followed by phones only (no kiosk types one): paced per address.
        app[TOKEN_GUESSES] = MissPacer(redis, key_prefix, app[CLOCK], "status links", {"address": STATUS_LINK_MISSES},
                                       scope="st")
        accounts = app[ACCOUNTS]

        async def abnormal_misses(subject: Subject, misses: int) -> None:
            # For the supervisor: a kiosk (or address) trying far more unknown codes than visitors mistype.
            await accounts.audit("system", "booking_codes.abnormal_misses", subject=subject.kind, id=subject.id,
                                 misses=str(misses))

        app[BOOKING_GUESSES] = MissPacer(redis, key_prefix, app[CLOCK], "booking codes or links", alert=abnormal_misses)
        app[KIOSKS] = Kiosks(redis, key_prefix, app[CLOCK])
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
            await close_client(redis)
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
