"""The live hub of one server process: office states fed by Redis events, and their subscribers.

Redis pub/sub is only a wake-up: an event that arrives out of sequence, or a reconnect, makes
the hub read what it missed from the office's event stream (the truth), or rebuild the state
from a fresh snapshot when the stream no longer reaches back far enough.

At each midnight of the office clock the hub asks the store to begin the new business day (the
first process to ask closes the old day out; see ``QueueStore.start_day``); a state that moves to
a new day, by that or by the first event of the day, sends every subscriber a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable
from typing import Any, Final, Protocol

from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .aio import stop_tasks
from .domain.state import GapError, OfficeState
from .store.bookings import Bookings
from .store.connect import is_cluster
from .store.redis_store import QueueStore

log = logging.getLogger(__name__)

DAY_CHECK_SECONDS: Final = 30.0
"""Longest sleep between looks at the clock on the way to midnight (a wall-clock jump is followed within it)."""
RECONNECT_FIRST_SECONDS: Final = 0.05
RECONNECT_MAX_SECONDS: Final = 0.5   # displays are silent while the hub is away: retry often
SHARDED_POLL_SECONDS: Final = 1.0  # a cluster channel's bounded read (a message ends it at once)
CATCH_UP_MAX_EVENTS: Final = 16      # more missed events than this: one fresh snapshot per subscriber instead
RELEASE_SECONDS: Final = 60.0
"""How often the hub releases no-show bookings (a minute late on a 10-minute rule is within reason)."""


class Subscriber(Protocol):
    """Something that wants an office's changes: a WebSocket view, the estimator."""

    def on_snapshot(self, state: OfficeState) -> None:
        """The state was (re)built from a snapshot: send the whole view again."""

    def on_event(self, event: dict[str, Any], state: OfficeState) -> None:
        """One event was applied to ``state``."""

    # Optional: ``on_estimates(state)`` — fresh wait estimates are in ``state.estimates``.


class Hub:
    """One :class:`OfficeState` per office, kept current, and the subscribers of each."""

    def __init__(self, store: QueueStore) -> None:
        self.store = store
        self.states: dict[str, OfficeState] = {}
        self.subscribers: dict[str, set[Subscriber]] = {office: set() for office in store.config.offices}
        self.listeners: list[Callable[[str, OfficeState], None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._pubsubs: dict[str, PubSub] = {}  # each office's events channel connection while listening
        self._sharded = is_cluster(store.redis)
        self._lost: set[str] = set()        # offices whose channel is lost now
        self._following: set[str] = set()   # offices followed at least once
        self._lost_at: float | None = None
        self.ready = asyncio.Event()
        # The events channels' health, for the health endpoint (connected: every office's).
        self.connected = False
        self.disconnects = 0        # times the channel was lost after being up
        self.failed_attempts = 0    # reconnect attempts failed since it was lost
        self.retry_seconds = 0.0    # the current wait between attempts
        self._clock_set = asyncio.Event()
        store.clock.on_set(self._clock_set.set)
        self._release_now = asyncio.Event()  # the clock was set: release what is due at once
        store.clock.on_set(self._release_now.set)

    async def start(self) -> None:
        """Subscribe to events, then load every office's snapshot."""
        self._tasks = [asyncio.create_task(self._listen(), name="hub-listen"),
                       asyncio.create_task(self._watch_day(), name="hub-day"),
                       asyncio.create_task(self._release_no_shows(), name="hub-no-shows")]
        await self.ready.wait()

    async def stop(self) -> None:
        """Stop listening. A listen task that lost its cancellation inside redis-py's blocking read has
        the events connection closed under it before it is cancelled again (``aio.stop_tasks``)."""

        async def close_events_connection() -> None:
            for pubsub in list(self._pubsubs.values()):
                if pubsub.connection is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.connection.disconnect(nowait=True)

        await stop_tasks(self._tasks, close_events_connection)

    def state(self, office: str) -> OfficeState:
        """The live state of an office (the hub is ready before the server takes requests)."""
        return self.states[office]

    def subscribe(self, office: str, subscriber: Subscriber) -> None:
        """Add a subscriber and give it the current state at once (no await in between)."""
        self.subscribers[office].add(subscriber)
        subscriber.on_snapshot(self.states[office])

    def publish_estimates(self, office: str, estimates: dict[str, Any]) -> None:
        """Store fresh estimates on the office state and tell the subscribers that want them."""
        state = self.states.get(office)
        if state is None:
            return
        state.estimates = estimates
        state.changed()
        for subscriber in list(self.subscribers[office]):
            on_estimates = getattr(subscriber, "on_estimates", None)
            if on_estimates is not None:
                on_estimates(state)

    def refresh_views(self, office: str) -> None:
        """Something the views show besides the state changed (the next free booking slots of the
        congestion view): the views look again, as after estimates; each sends only what changed."""
        state = self.states.get(office)
        if state is not None:
            self.publish_estimates(office, state.estimates)

    def unsubscribe(self, office: str, subscriber: Subscriber) -> None:
        """Remove a subscriber; unknown ones are ignored."""
        self.subscribers[office].discard(subscriber)

    async def _resync(self, office: str, today: str = "", fresh: bool = False) -> None:
        """Catch up from the stream when a few events were missed; otherwise rebuild from a snapshot.
        Rebuild too when the events read leave the state before business day ``today`` (a day that
        had no tickets), and always when ``fresh`` (after the channel was lost: a failover may have
        promoted a replica whose stream lacks the last events this hub applied, which were never
        acknowledged, so the numbers alone cannot tell what is still true).

        Many missed events (after an outage) are not replayed one by one: that burst would fill
        every client's outgoing queue and look like a client that stopped reading. One fresh
        snapshot per subscriber says the same in one message.
        """
        state = self.states.get(office)
        if state is not None and not fresh:
            latest = await self.store.latest_event_seq(office)
            if state.seq <= latest <= state.seq + CATCH_UP_MAX_EVENTS:
                events = await self.store.events_since(office, state.seq)
                if len(events) <= CATCH_UP_MAX_EVENTS and (not events or events[0]["seq"] == state.seq + 1):
                    for event in events:
                        self._deliver(event)
                    if self.states[office].day >= today:
                        return
        snap = await self.store.snapshot(office)
        previous = self.states.get(office)
        calling = self.store.config.calling
        state = OfficeState.from_snapshot(office, snap, calling.order, booked_before_slot=calling.booked_before_slot,
                                          now=self.store.clock.now_ms)
        if previous is not None:
            state.estimates = previous.estimates  # until the next computation replaces them
            state.extras = previous.extras
            if previous.day == state.day:
                state.figures = previous.figures  # the day's waits so far (the supervisor's figures)
        self.states[office] = state
        for subscriber in list(self.subscribers[office]):
            subscriber.on_snapshot(state)
        self._changed(office, state)

    def _deliver(self, event: dict[str, Any]) -> bool:
        """Apply one event and tell the subscribers; raises GapError when one is missing."""
        office = event["office"]
        state = self.states.get(office)
        if state is None:
            return False
        day = state.day
        if not state.apply(event):
            return False
        for subscriber in list(self.subscribers[office]):
            subscriber.on_event(event, state)
            if state.day != day or (event["type"] == "day.closed" and event["closed"] == day):
                # A new business day, or today closed out by the supervisor: views that follow tickets
                # by number or keep counts start again from a snapshot.
                subscriber.on_snapshot(state)
        self._changed(office, state)
        return True

    def _changed(self, office: str, state: OfficeState) -> None:
        for listener in self.listeners:
            listener(office, state)

    async def _listen(self) -> None:
        """Follow every office's events channel, each in its own task, for as long as the server runs."""
        await asyncio.gather(*(self._follow(office) for office in self.store.config.offices))

    def _channel_lost(self, office: str, error: Exception) -> None:
        if not self._lost:
            log.warning("lost the Redis events channel (%s); reconnecting", error)
            self.disconnects += 1 if self.connected else 0
            self._lost_at = asyncio.get_running_loop().time()
        self._lost.add(office)
        self.connected = False

    def _channel_back(self, office: str) -> None:
        self._lost.discard(office)
        self._following.add(office)
        if self._lost or len(self._following) < len(self.subscribers):
            return
        if self._lost_at is not None:
            log.warning("Redis events channel back after %.1f s (%d attempts)",
                        asyncio.get_running_loop().time() - self._lost_at, self.failed_attempts)
        self.connected, self.failed_attempts, self._lost_at = True, 0, None
        self.ready.set()

    async def _next_message(self, pubsub: PubSub) -> dict[str, Any] | None:
        """The next message of an office's channel. A cluster's sharded pub/sub is read in bounded
        polls (its per-node reader moves the subscription to the slot's new owner between them)."""
        if self._sharded:
            return await pubsub.get_sharded_message(timeout=SHARDED_POLL_SECONDS)  # type: ignore[attr-defined]
        return await pubsub.get_message(timeout=None)

    async def _follow(self, office: str) -> None:
        """Follow one office's sharded channel (SSUBSCRIBE; the store SPUBLISHes each event in the
        office's slot), reconnecting promptly when lost.

        redis-py's own pub/sub does the rest: on one node or through Sentinel it reconnects and
        subscribes again (to the new primary); on a cluster it moves the subscription to the node
        that owns the office's slot after a failover or a resharding. Each (re)subscription is
        confirmed by an ``ssubscribe`` message, and the hub then rebuilds the office from a fresh
        snapshot (see ``_resync``): what was published while it was away is in it.

        The retry delay stays short (at most ``RECONNECT_MAX_SECONDS``): while the hub is away the
        displays are silent, and a refused connection costs Redis next to nothing.
        """
        delay = RECONNECT_FIRST_SECONDS
        channel = self.store.events_channel(office)
        while True:
            pubsub = self.store.redis.pubsub()
            self._pubsubs[office] = pubsub
            try:
                await pubsub.ssubscribe(channel)
                # Subscribed first, then read state: nothing published in between is lost.
                await self._resync(office, fresh=office in self._following)
                self._channel_back(office)
                delay = RECONNECT_FIRST_SECONDS
                confirmations = 1  # the one of the SSUBSCRIBE above; any later one is a resubscription
                while True:
                    message = await self._next_message(pubsub)
                    if message is None:
                        continue
                    if message["type"] == "ssubscribe":
                        confirmations -= 1
                        if confirmations < 0:  # subscribed again by redis-py (a reconnect, a failover, a move)
                            await self._resync(office, fresh=True)
                        continue
                    if message["type"] == "sunsubscribe":
                        # Not ours: the node gave the office's slot away (a resharding) and dropped the
                        # subscription. A keyed command teaches redis-py the slot's new owner (MOVED);
                        # then subscribe again there, at once.
                        await self.store.latest_event_seq(office)
                        raise RedisConnectionError(f"the events channel of {office} moved to another node")
                    if message["type"] != "smessage":
                        continue
                    event = json.loads(message["data"])
                    if event.get("office") != office:
                        continue
                    try:
                        self._deliver(event)
                    except GapError:
                        log.warning("event gap at office %s; catching up", office)
                        await self._resync(office)
            except (RedisConnectionError, RedisTimeoutError, OSError) as e:
                self._channel_lost(office, e)
                self.failed_attempts += 1
                self.retry_seconds = delay
                await asyncio.sleep(delay * (0.5 + random.random() / 2))  # jitter: servers don't retry in step
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _watch_day(self) -> None:
        """At each midnight of the office clock, begin the new business day in the store and here."""
        await self.ready.wait()
        while True:
            await self._until_next_day()
            for office in list(self.states):
                with contextlib.suppress(RedisConnectionError, RedisTimeoutError, OSError):
                    # Every process asks; the first closes the old day out, the rest find it done.
                    today = await self.store.start_day(office)
                    if self.states[office].day < today:
                        await self._resync(office, today)

    async def _release_no_shows(self) -> None:
        """Every minute, release each office's bookings not checked in by their release time (every
        process asks; the step is idempotent, so the first does it and the others find nothing due)."""
        await self.ready.wait()
        bookings = Bookings(self.store)
        offices = [o.id for o in self.store.config.offices.values() if o.bookings.procedures]
        while offices:
            self._release_now.clear()
            for office in offices:
                try:
                    await bookings.release(office)
                except (RedisConnectionError, RedisTimeoutError, OSError):
                    pass  # the next round (the store is back by then, or it is not: nothing to do)
                except Exception:  # a bug must not stop the releases of the days to come
                    log.exception("releasing no-show bookings of %s failed", office)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release_now.wait(), RELEASE_SECONDS)

    async def _until_next_day(self) -> None:
        """Sleep until the clock's business day changes: until the next midnight exactly, looking again
        at least every DAY_CHECK_SECONDS and whenever the clock is set."""
        clock = self.store.clock
        day = clock.day()
        while clock.day() == day:
            self._clock_set.clear()
            seconds = min((clock.next_day_ms() - clock.now_ms()) / 1000, DAY_CHECK_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._clock_set.wait(), max(seconds, 0.001))
