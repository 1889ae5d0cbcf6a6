"""GET /metrics: the server's operational figures in Prometheus' text format (prometheus-client).

The registry belongs to the app (created in ``init_app``, kept behind :data:`METRICS`), never to
the module: two apps in one process (the tests) keep separate figures. Labels hold ids only —
office, procedure, the place an error was met — never a ticket number, name or free text.

Tickets issued and called are counted from the office events this process's hub follows, so every
server process reports the same office-wide totals (aggregate them with ``max``, not ``sum``); events
that a hub skips by rebuilding from a snapshot after an outage are not counted. What a scrape reads
from live state (people waiting, WebSocket clients, the embedded Valkey, the events channel) comes
from a collector asked at scrape time, so it is never stale and needs no bookkeeping.

Metrics are operational data: only the addresses in ``server.metrics_allow`` (loopback by default)
may read them, since a Prometheus scraper cannot sign in.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..domain.state import OfficeState
from ..live import Hub
from .client_address import is_in, parse_address
from .keys import CLOCK, CONFIG, EMBEDDED, HUB
from .messages import ApiError
from .openapi import add_paths, operation

PREFIX: Final = "madoguchi"
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""The classic text format ``generate_latest`` writes (every Prometheus version reads it; our names need no escaping)."""
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Call-to-display seconds: a call should reach the lobby within a fraction of a second."""
ESTIMATE_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The app's registry and the figures counted as things happen."""

    def __init__(self, app: web.Application, connections: set[Any]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.issued = Counter(f"{PREFIX}_tickets_issued", "Tickets issued, per office and procedure",
                              ("office", "procedure"), registry=self.registry)
        self.called = Counter(f"{PREFIX}_tickets_called", "Tickets called to a counter (first calls, not recalls)",
                              ("office", "procedure"), registry=self.registry)
        self.call_latency = Histogram(
            f"{PREFIX}_call_to_display_seconds",
            "From a call's event time to this server queuing it to the lobby displays' WebSockets",
            ("office",), buckets=LATENCY_BUCKETS, registry=self.registry)
        self.estimate_seconds = Histogram(f"{PREFIX}_estimate_seconds", "Time to recompute one office's wait estimates",
                                          ("office",), buckets=ESTIMATE_BUCKETS, registry=self.registry)
        self.store_errors = Counter(f"{PREFIX}_store_errors", "HTTP requests and WebSocket messages that met an unavailable Redis/Valkey store",
                                    ("where",), registry=self.registry)
        self.registry.register(LiveCollector(app, connections))
        self._clock = app[CLOCK]

    def follow(self, hub: Hub) -> None:
        """Count the events of every office from now on (called once the hub is ready)."""
        for office in hub.store.config.offices:
            hub.subscribe(office, EventCounter(self, office))

    def displayed(self, office: str, event: dict[str, Any]) -> None:
        """A call was just queued to the lobby subscribers: record how long after the call that was."""
        self.call_latency.labels(office).observe(max(0.0, (self._clock.now_ms() - int(event["at"])) / 1000))

    def estimated(self, office: str, seconds: float) -> None:
        """One office's estimates were recomputed in ``seconds``."""
        self.estimate_seconds.labels(office).observe(seconds)


class EventCounter:
    """A hub subscriber of one office that counts issued and called tickets."""

    def __init__(self, metrics: Metrics, office: str) -> None:
        self.metrics = metrics
        self.office = office

    def on_snapshot(self, state: OfficeState) -> None:
        """A rebuilt state holds no events to count."""

    def on_event(self, event: dict[str, Any], state: OfficeState) -> None:
        """Count one event."""
        kind, ticket = event.get("type"), event.get("ticket")
        if ticket is None:
            return
        if kind == "ticket.issued":
            self.metrics.issued.labels(self.office, ticket["procedure"]).inc()
        elif kind == "ticket.called":
            self.metrics.called.labels(self.office, ticket["procedure"]).inc()


class LiveCollector(Collector):
    """Figures read from the app's live state at scrape time."""

    def __init__(self, app: web.Application, connections: set[Any]) -> None:
        self.app = app
        self.connections = connections

    def describe(self) -> list[Metric]:
        """Nothing to describe ahead (the families depend on the live state)."""
        return []

    def collect(self) -> Iterator[Metric]:
        """People waiting, WebSocket clients, events channel and embedded Valkey."""
        clients = GaugeMetricFamily(f"{PREFIX}_websocket_clients", "WebSocket connections open on this server")
        clients.add_metric((), len(self.connections))
        yield clients
        hub = self.app.get(HUB)
        if hub is not None:
            waiting = GaugeMetricFamily(f"{PREFIX}_waiting", "People waiting now, per office and procedure",
                                        labels=("office", "procedure"))
            config = self.app[CONFIG]
            for office_id, office in config.offices.items():
                state = hub.states.get(office_id)
                counts = state.waiting_counts() if state is not None else {}
                for procedure in office.procedures:
                    waiting.add_metric((office_id, procedure), counts.get(procedure, 0))
            yield waiting
            yield GaugeMetricFamily(f"{PREFIX}_events_channel_connected",
                                    "1 while the hub follows the Redis events channel", value=int(hub.connected))
            yield CounterMetricFamily(f"{PREFIX}_events_channel_reconnects",
                                      "Times the events channel was lost and had to be reconnected", value=hub.disconnects)
        embedded = self.app.get(EMBEDDED)
        if embedded is not None:
            yield GaugeMetricFamily(f"{PREFIX}_embedded_valkey_running", "1 while the embedded Valkey runs",
                                    value=int(embedded.running))
            yield CounterMetricFamily(f"{PREFIX}_embedded_valkey_restarts",
                                      "Times the embedded Valkey was restarted after it stopped", value=embedded.restarts)


def allowed(request: web.Request) -> bool:
    """Is the peer's address in ``server.metrics_allow``? (A reverse proxy's own address counts, not its clients'.)"""
    return is_in(parse_address(request.remote or ""), request.app[CONFIG].server.metrics_allow)


async def get_metrics(request: web.Request) -> web.Response:
    """GET /metrics"""
    if not allowed(request):
        raise ApiError("forbidden", f"metrics are not open to {request.remote}; see server.metrics_allow")
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def setup_metrics(app: web.Application, connections: set[Any]) -> None:
    """Create the app's registry (``connections``: the open WebSockets), register and document the endpoint."""
    app[METRICS] = Metrics(app, connections)
    app.router.add_get("/metrics", get_metrics)
    doc = operation(
        "Prometheus metrics (text format): tickets issued and called, people waiting, call-to-display latency, "
        "WebSocket clients, estimate run time, store errors, events channel and embedded Valkey. Only from the "
        "addresses in server.metrics_allow (loopback by default); others get 403 forbidden",
        "Metrics in Prometheus' text exposition format")
    doc["responses"]["200"]["content"] = {"text/plain": {"schema": {"type": "string"}}}
    add_paths(app, {"/metrics": {"get": doc}})


METRICS: Final = web.AppKey("metrics", Metrics)
"""The app's Prometheus registry and its counters."""
