"""GET /api/health: is this server able to serve, and how are its Redis and events channel doing.

For a load balancer or a supervisor script: 200 with ``"status": "ok"`` when Redis answers and the
hub follows the events channel; 503 with ``"status": "unavailable"`` (and the usual error body)
otherwise. The JSON says which part is down, and how often the embedded Valkey was restarted.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Final

from aiohttp import web
from redis.exceptions import RedisError

from .keys import EMBEDDED, HUB, REDIS, WORKER
from .messages import ApiError, error_body, json_response
from .openapi import add_paths, operation

PING_TIMEOUT_SECONDS: Final = 1.0


async def get_health(request: web.Request) -> web.Response:
    """GET /api/health"""
    app = request.app
    try:
        redis_up = bool(await asyncio.wait_for(app[REDIS].ping(), PING_TIMEOUT_SECONDS))
    except (RedisError, OSError, TimeoutError):
        redis_up = False
    hub = app[HUB]
    body: dict[str, Any] = {
        "redis": {"up": redis_up},
        "events": {"connected": hub.connected, "disconnects": hub.disconnects,
                   "failed_attempts": hub.failed_attempts, "retry_seconds": hub.retry_seconds},
    }
    if (worker := app[WORKER]) is not None:  # serve --workers: which process answered
        body["worker"] = {"index": worker, "pid": os.getpid()}
    if (embedded := app.get(EMBEDDED)) is not None:
        body["embedded_valkey"] = {"running": embedded.running, "pid": embedded.pid, "restarts": embedded.restarts,
                                   "last_exit": embedded.last_exit}
    if redis_up and hub.connected:
        return json_response({"status": "ok", **body})
    down = "Redis" if not redis_up else "the events channel"
    error = ApiError("unavailable", f"{down} is unavailable; the server keeps trying")
    return json_response({"status": "unavailable", **body, **error_body(error)}, status=503)


def setup_health(app: web.Application) -> None:
    """Register and document the health endpoint."""
    app.router.add_get("/api/health", get_health)
    add_paths(app, {"/api/health": {"get": operation(
        "Server health: Redis reachable, events channel followed, embedded Valkey restarts (503 when not serving)",
        "Healthy")}})
