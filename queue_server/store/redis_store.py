"""The storage adapter: each domain operation as one atomic step on Redis/Valkey, a function of the
``madoguchi`` library (``FCALL mg_{op}``).

Redis keys (``P`` is the key prefix, default ``mg:``; ``O`` = ``P o:{office}:`` with the office id as the
hash tag, braces included; ``D`` = ``O d:{YYYYMMDD}:``) are listed in ARCHITECTURE.md; the library is
``lua/*.lua``, joined by ``scripts.py``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any, Final

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from ..clock import Clock
from ..config import Config, Office
from ..domain.model import Conflict, DomainError, NotFound, Role
from ..domain.policy import transition_error
from ..domain.tasks import task_transition_error
from . import scripts
from .connect import is_cluster

DEFAULT_PREFIX: Final = "mg:"
TOKEN_BYTES: Final = 16  # 128 bits: a status URL cannot be guessed from the ticket number
STREAM_READ_LIMIT: Final = 1000
FUNCTION_MISSING: Final = ("Function not found", "No matching script", "NOSCRIPT")
"""What FCALL answers on a node without the library (restarted without persistence, a new primary, a new node)."""
READ_ONLY_OPS: Final = frozenset({"snapshot"})
"""Steps that change nothing, so have nothing for replicas to confirm (no WAIT)."""
CALLING_ORDER_OPS: Final = frozenset({"issue", "check_in", "call_next", "hand_over"})
"""The steps that compute queue scores (``score_of``), so need ``[calling] order``."""

IDEMPOTENCY_SECONDS: Final = 86400
"""How long a step's first answer is kept for a retry (``lua/main.lua`` ``once``)."""

Result = dict[str, Any]


class NotReplicated(RedisConnectionError):
    """The step ran on the primary but too few replicas confirmed it in time: to its callers the
    store is unavailable for now, like a lost connection (503 ``unavailable``; the hub retries)."""


def _lists(value: Any) -> Any:
    """Lua's cjson writes an empty array as ``{}``; make those empty lists again where lists belong."""
    return [] if value == {} else value


def _error(result: Mapping[str, Any]) -> DomainError:
    """The domain exception for an error answer of the Lua step."""
    code = result["err"]
    if code == "bad_state":
        return transition_error(result["op"], result["number"], result["state"])
    if code == "not_found":
        return NotFound(f"no ticket {result['number']} today")
    if code == "counter_busy":
        return Conflict(
            f"counter {result['counter']} still has ticket {result['number']} ({result['state']}): "
            "finish it, mark it no-show or hand it over first",
            code="counter_busy",
        )
    if code == "counter_not_open":
        return Conflict(f"counter {result['counter']} is {result['status']}; open it first", code="counter_not_open")
    if code == "queue_empty":
        return Conflict(f"nobody is waiting for the procedures counter {result['counter']} serves", code="queue_empty")
    if code == "no_ticket":
        return Conflict(f"counter {result['counter']} has no called or serving ticket to {result['op'].replace('_', '-')}",
                        code="no_ticket")
    if code == "numbers_exhausted":
        return Conflict(f"today's numbers for {result['procedure']} ({result['first']}–{result['last']}) are used up",
                        code="numbers_exhausted")
    if code == "procedure_paused":
        return Conflict(f"procedure {result['procedure']} is not taking tickets now", code="procedure_paused")
    if code == "procedure_not_allowed":
        return Conflict(f"counter {result['counter']} cannot call ticket {result['number']} of procedure {result['procedure']}",
                        code="procedure_not_allowed")
    if code == "not_recalled_enough":
        return Conflict(
            f"ticket {result['number']} has been recalled {result['recalls']} of {result['needed']} times "
            "before it can be marked no-show",
            code="not_recalled_enough",
        )
    if code == "card_not_ready":
        return Conflict(f"ticket {result['number']} cannot be called yet: its card is still being prepared "
                        f"(task {result['task']}); call-next takes the next ready ticket", code="card_not_ready")
    if code == "bad_task_state":
        return task_transition_error(result["op"], result["task"], result["state"])
    if code == "task_not_found":
        return NotFound(f"no task {result['task']}")
    if code == "no_task":
        return Conflict(f"no open back-office task at {result['office']}", code="no_task")
    if code == "idempotency_key_reused":
        return Conflict(f"this Idempotency-Key was already used for a different request ({result['op']})",
                        code="idempotency_key_reused")
    return DomainError(f"store error {code}")


class QueueStore:
    """Tickets, counters and events of every office, kept in one Redis database."""

    def __init__(self, redis: Redis, config: Config, clock: Clock, prefix: str = DEFAULT_PREFIX) -> None:
        self.redis = redis
        self.config = config
        self.clock = clock
        self.prefix = prefix
        self._library = scripts.source()

    def office_key(self, office_id: str) -> str:
        """The prefix of every key of one office (``O``): the office id is the hash tag."""
        return f"{self.prefix}o:{{{office_id}}}:"

    async def load_functions(self) -> None:
        """Load (or replace) the ``madoguchi`` library: at start-up, before any step, so a server
        always runs its own version. A node found without it later is loaded again by ``_fcall``."""
        await self.redis.function_load(self._library, replace=True)

    def new_token(self, office_id: str) -> str:
        """A status token: ``{office}.{random}``, so it is found under its own office (``O tok:{random}``).
        Office ids are ``[a-z0-9_-]`` and ``token_urlsafe`` is ``[A-Za-z0-9_-]``: the first '.' splits."""
        return f"{office_id}.{secrets.token_urlsafe(TOKEN_BYTES)}"

    async def move_untagged_keys(self) -> int:
        """Rename keys written before offices had a hash tag (``P o:office:…``) to ``P o:{office}:…``.

        Run once at start-up, before any step: an upgraded server finds its offices' days, tickets,
        counters and history where it now looks. Returns how many keys moved (0 once done). RENAME of
        an untagged key to a tagged one crosses slots: this is for a single-node upgrade only; a
        cluster deployment starts on tagged keys (there is nothing to move)."""
        moved = 0
        for office_id in self.config.offices:
            old = f"{self.prefix}o:{office_id}:"
            async for key in self.redis.scan_iter(match=old + "*", count=1000):  # ids are [a-z0-9_-]: no glob characters
                await self.redis.renamenx(key, self.office_key(office_id) + key.decode()[len(old):])
                moved += 1
        return moved

    def office(self, office_id: str) -> Office:
        """The configured office, or NotFound."""
        try:
            return self.config.offices[office_id]
        except KeyError:
            raise NotFound(f"no office {office_id!r}; offices: {', '.join(self.config.offices)}") from None

    def office_lists(self, office_id: str) -> Result:
        """The office's procedures and counters, for a step that goes over all of them (the snapshot,
        closing a day); the common steps are not sent them."""
        office = self.config.offices[office_id]
        return {"office_procedures": list(office.procedures), "office_counters": list(office.counters)}

    def day_inputs(self, office_id: str) -> Result:
        """What ``mg_start_day`` needs to close out earlier days (``lua/day.lua``) and prune the archive."""
        return {**self.office_lists(office_id), "archive_keep_years": self.config.archive.keep_years}

    async def _fcall(self, op: str, office: str, request: Mapping[str, Any]) -> Result:
        """One call of the library's ``mg_{op}``, routed by the office's ``O evseq`` (KEYS[1]); a node
        without the library (restarted without persistence, a new primary after a failover) gets it
        loaded and the call once more."""
        keys_and_args = (f"{self.office_key(office)}evseq", json.dumps(request))
        try:
            raw = await self._call(f"mg_{op}", office, keys_and_args, request.get("idem"))
        except ResponseError as e:
            if not any(m in str(e) for m in FUNCTION_MISSING):
                raise
            await self.load_functions()
            raw = await self._call(f"mg_{op}", office, keys_and_args, request.get("idem"))
        return json.loads(raw)

    async def _call(self, function: str, office: str, keys_and_args: tuple[str, str], idem: str | None) -> bytes:
        """FCALL, and where replicas must acknowledge (``[server] replica_acks``), ``WAIT`` right after
        it on the same connection, in one round trip (a pipeline; on a cluster sent to the node that
        owns the office's slot). WAIT waits for what *this connection* wrote, so a retry answered
        from the idempotency record (which writes nothing) refreshes that record's expiry first: the
        replica that acknowledges it has the first answer's write too (replication keeps order).
        Fewer replicas in time: :class:`NotReplicated` (503), and the retry settles it."""
        acks = self.config.server.replica_acks
        if not acks or function[3:] in READ_ONLY_OPS:
            return await self.redis.fcall(function, 1, *keys_and_args)
        timeout = self.config.server.replica_ack_timeout_ms
        target: dict[str, Any] = {}
        if is_cluster(self.redis):
            target = {"target_nodes": self.redis.get_node_from_key(keys_and_args[0])}
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.fcall(function, 1, *keys_and_args)
            if idem:
                pipe.pexpire(f"{self.office_key(office)}idem:{idem}", IDEMPOTENCY_SECONDS * 1000)
            pipe.execute_command("WAIT", acks, timeout, **target)
            *results, acknowledged = await pipe.execute()
        if target and self.redis.get_node_from_key(keys_and_args[0]).name != target["target_nodes"].name:
            acknowledged = 0  # the slot moved under the call: the WAIT was not where the write went
        if acknowledged < acks:
            raise NotReplicated(f"the change is not yet confirmed by {acks} replica(s) of the store within {timeout} ms; "
                                "try again with the same Idempotency-Key")
        return results[0]

    async def _run(self, op: str, office: str, *, idem: str | None = None, actor: str | None = None,
                   day: str | None = None, errors: Callable[[Mapping[str, Any]], DomainError | None] | None = None,
                   **params: Any) -> Result:
        """Run one operation of the library and return its answer, raising domain errors.

        ``day`` names the business day of the ticket concerned (a status link's); without it the
        step works on the office's current day. A step that finds the office still on an earlier day
        answers ``day_not_started``: then ``mg_start_day`` closes that day out (it needs the office's
        procedures and counters, which other steps are not sent; see ``lua/day.lua``) and the step
        runs again, with the same time. ``errors`` turns an area's own error answers into domain
        errors (None: not one of its own).
        """
        now = self.clock.now_ms()
        request = {"today": self.clock.day(now), "day": day, "now": now, "idem": idem or None, "actor": actor or None,
                   **params}
        if op in CALLING_ORDER_OPS:
            request["calling_order"] = self.config.calling.order.value
        request = {k: v for k, v in request.items() if v is not None}
        result = await self._fcall(op, office, request)
        if result.get("err") == "day_not_started":
            await self._fcall("start_day", office, {"today": request["today"], "now": now, **self.day_inputs(office)})
            result = await self._fcall(op, office, request)
        if "err" in result:
            raise (errors and errors(result)) or _error(result)
        return result

    # -- visitors -----------------------------------------------------------------------

    async def issue(self, office_id: str, procedure_id: str, *, lang: str = "ja", priority: int = 0,
                    idem: str | None = None, estimate_minutes: float | None = None) -> Result:
        """Issue the day's next number for a procedure; returns ticket, status token and people ahead.

        ``estimate_minutes`` is the wait shown to the visitor at issue (kept on the ticket and in the
        archive, for the reports' estimate accuracy)."""
        office = self.office(office_id)
        procedure = office.procedures.get(procedure_id)
        if procedure is None:
            raise NotFound(f"no procedure {procedure_id!r} at {office_id}; procedures: {', '.join(office.procedures)}")
        fmt = procedure.number
        return await self._run(
            "issue", office_id, idem=idem, procedure=procedure_id, lang=lang, priority=priority,
            prepare="prepare" in procedure.stages or None, work_office=office.work_office,
            token=self.new_token(office_id), estimate_minutes=estimate_minutes,
            number_format={"prefix": fmt.prefix, "width": fmt.width, "first": fmt.first, "last": fmt.last},
        )

    async def resolve_token(self, token: str) -> tuple[str, str, str]:
        """(office, day, number) of the ticket a status token belongs to, or NotFound.

        ``{office}.{random}`` is ``O tok:{random}`` of that office (``day|number``). A token without
        '.' was issued before tokens named their office: the old ``P tok:{token}`` (``office|day|number``,
        read only, expiring 3 days after its issue) still finds it."""
        office, dot, random = token.partition(".")
        if dot:
            raw = await self.redis.get(f"{self.office_key(office)}tok:{random}") if office in self.config.offices else None
            value = f"{office}|{raw.decode()}" if raw is not None else None
        else:
            old = await self.redis.get(f"{self.prefix}tok:{token}")
            value = old.decode() if old is not None else None
        if value is None:
            raise NotFound("no ticket with this status link (it may have expired)")
        office, day, number = value.split("|")
        return office, day, number

    async def ticket(self, office_id: str, day: str, number: str) -> Result:
        """One ticket as stored, without its token."""
        raw = await self.redis.hgetall(f"{self.office_key(office_id)}d:{day}:t:{number}")
        if not raw:
            raise NotFound(f"no ticket {number} on {day}")
        ticket: Result = {k.decode(): v.decode() for k, v in raw.items()}
        ticket.pop("token", None)
        for key in ("seq", "order", "priority", "issued_at", "called_at", "started_at", "finished_at", "recalls", "score"):
            if key in ticket:
                ticket[key] = int(float(ticket[key]))
        return ticket

    async def cancel(self, office_id: str, number: str, *, day: str | None = None, actor: str | None = None,
                     idem: str | None = None) -> Result:
        """Cancel a waiting or called ticket (visitor leaving, or staff)."""
        self.office(office_id)
        return await self._run("cancel", office_id, number=number, day=day, actor=actor, idem=idem)

    # -- counters -----------------------------------------------------------------------

    def _callable(self, office: Office, counter_id: str) -> list[str]:
        """Procedures a counter may call a specific number from: any, but city-staff queues only at city counters."""
        counter = office.counters[counter_id]
        return [p.id for p in office.procedures.values() if not p.city_staff_only or counter.staff is Role.CITY]

    def _counter(self, office_id: str, counter_id: str) -> Office:
        office = self.office(office_id)
        if counter_id not in office.counters:
            raise NotFound(f"no counter {counter_id!r} at {office_id}; counters: {', '.join(office.counters)}")
        return office

    async def call_next(self, office_id: str, counter_id: str, *, actor: str | None = None, idem: str | None = None) -> Result:
        """Call the next ticket by the calling policy for this counter."""
        office = self._counter(office_id, counter_id)
        return await self._run("call_next", office_id, counter=counter_id, actor=actor, idem=idem,
                               procedures=list(office.counters[counter_id].procedures))

    async def call_number(self, office_id: str, counter_id: str, number: str, *, actor: str | None = None,
                          idem: str | None = None) -> Result:
        """Call a specific waiting ticket to this counter."""
        office = self._counter(office_id, counter_id)
        return await self._run("call_number", office_id, counter=counter_id, number=number, actor=actor, idem=idem,
                               procedures=self._callable(office, counter_id))

    async def counter_op(self, op: str, office_id: str, counter_id: str, *, actor: str | None = None,
                         idem: str | None = None) -> Result:
        """recall, start, finish or no_show on the counter's current ticket."""
        office = self._counter(office_id, counter_id)
        # Finishing a visit of a procedure with a post-issuance stage creates its task in the same step.
        post = {p.id: True for p in office.procedures.values() if "post" in p.stages} if op == "finish" else None
        return await self._run(op, office_id, counter=counter_id, actor=actor, idem=idem,
                               max_recalls=self.config.calling.max_recalls if op == "no_show" else None,
                               post_procedures=post or None, work_office=office.work_office if post else None)

    async def hand_over(self, office_id: str, counter_id: str, to: str, reason: str, *, keep_place: bool = True,
                        category: str | None = None, actor: str | None = None, idem: str | None = None) -> Result:
        """Send the counter's ticket to another procedure's queue, keeping its number.

        ``category`` (one of ``[calling] hand_over_categories``) is what the archive keeps of why;
        the free-text ``reason`` stays on the day's ticket for the staff only."""
        office = self._counter(office_id, counter_id)
        if to not in office.procedures:
            raise NotFound(f"no procedure {to!r} to hand over to; procedures: {', '.join(office.procedures)}")
        categories = self.config.calling.hand_over_categories
        if category is not None and category not in categories:
            raise NotFound(f"no hand-over category {category!r}; categories: {', '.join(categories) or '(none configured)'}")
        return await self._run("hand_over", office_id, counter=counter_id, to=to, reason=reason, category=category,
                               keep_place=keep_place, actor=actor, idem=idem)

    async def set_counter_status(self, office_id: str, counter_id: str, status: str, *, actor: str | None = None,
                                 idem: str | None = None) -> Result:
        """Open, pause or close a counter."""
        self._counter(office_id, counter_id)
        return await self._run("counter_status", office_id, counter=counter_id, status=status, actor=actor, idem=idem)

    async def set_procedure_paused(self, office_id: str, procedure_id: str, paused: bool, *, actor: str | None = None) -> Result:
        """Stop or resume issuing tickets for a procedure."""
        if procedure_id not in self.office(office_id).procedures:
            raise NotFound(f"no procedure {procedure_id!r} at {office_id}")
        return await self._run("procedure_status", office_id, procedure=procedure_id, paused=paused, actor=actor)

    async def set_notice(self, office_id: str, text: str, *, texts: Mapping[str, str] | None = None,
                         actor: str | None = None) -> Result:
        """The notice line of the lobby display: Japanese ``text``, and ``texts`` in other languages."""
        self.office(office_id)
        return await self._run("notice", office_id, text=text, texts=dict(texts) if texts else None, actor=actor)

    # -- reading ------------------------------------------------------------------------

    async def start_day(self, office_id: str) -> str:
        """Begin the clock's business day if the office is still on an earlier one (closing that day out);
        returns the office's business day. Idempotent: only the first caller of the day changes anything."""
        self.office(office_id)
        return str((await self._run("start_day", office_id, **self.day_inputs(office_id)))["today"])

    async def snapshot(self, office_id: str) -> Result:
        """The office's live state and the sequence number of the last event it includes."""
        self.office(office_id)
        result = await self._run("snapshot", office_id, **self.office_lists(office_id))
        for key in ("waiting", "active", "counters", "recent", "paused", "tasks", "tasktimes"):
            result[key] = _lists(result[key])
        return result

    async def events_since(self, office_id: str, seq: int) -> list[Result]:
        """The office's events after ``seq``, oldest first, from the stream."""
        entries = await self.redis.xrange(f"{self.office_key(office_id)}events", min=f"({seq}-0", count=STREAM_READ_LIMIT)
        return [json.loads(fields[b"e"]) for _id, fields in entries]

    async def latest_event_seq(self, office_id: str) -> int:
        """The sequence number of the office's newest event (0 before the first)."""
        return int(await self.redis.get(f"{self.office_key(office_id)}evseq") or 0)

    async def service_records(self, office_id: str, limit: int = 5000) -> list[Result]:
        """Measured counter service times, newest first."""
        return [json.loads(r) for r in await self.redis.lrange(f"{self.office_key(office_id)}services", 0, limit - 1)]

    def events_channel(self, office_id: str) -> str:
        """The sharded pub/sub channel (SPUBLISH) on which the office's events are announced: ``O events``,
        in the office's slot (channels are not keys: the stream of the same name is another thing)."""
        return f"{self.office_key(office_id)}events"

