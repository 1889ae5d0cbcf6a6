"""Back-office tasks in the store: claim, finish and give back, each one atomic Lua step (``lua/tasks.lua``).

Tasks are created by other steps (issuing a ticket that needs its card prepared, finishing a visit
with post-issuance work, booking a pickup); this module adds the back office's own actions and the
reading of what the hub does not keep (booking notice references).

A task lives under the office of the visit or booking it belongs to and is known by that office and
its id; an office's back office also works the tasks of the branches whose cards it keeps
(``[offices.back_office] cards_kept_at``), so claim-next looks at all of them.
"""

from __future__ import annotations

import json
from typing import Any

from ..config import Office
from ..domain.model import Conflict
from .redis_store import QueueStore, Result


class TaskStore:
    """The back-office actions of every office, on the :class:`QueueStore`'s script and Redis."""

    def __init__(self, store: QueueStore) -> None:
        self.store = store

    def work_offices(self, office_id: str) -> list[Office]:
        """The offices whose tasks ``office_id``'s back office does: itself and the branches keeping cards there."""
        office = self.store.office(office_id)
        return [office, *(o for o in self.store.config.offices.values() if o.cards_kept_at == office.id)]

    async def claim(self, office_id: str, task_id: str, *, actor: str, idem: str | None = None) -> Result:
        """Claim one task of ``office_id``; 409 naming its state when it is not open."""
        self.store.office(office_id)
        return await self.store._run("task_claim", office_id, task=task_id, actor=actor, idem=idem)

    async def claim_next(self, work_office: str, order: list[str], *, actor: str, idem: str | None = None) -> Result:
        """Claim the first open task in the work order for ``work_office``'s back office.

        ``order`` lists the offices to try, the one whose best open task comes first in the work list
        first (the caller knows from the live state). Each office's step claims its own first open task
        atomically; an office with none (someone was faster) passes to the next. A retried request
        (same Idempotency-Key) is sent first to the office that answered it, so it gets that answer.
        """
        offices = [o.id for o in self.work_offices(work_office)]
        order = [o for o in order if o in offices] + [o for o in offices if o not in order]
        if idem:
            for office in order:
                if await self.store.redis.exists(f"{self.store.office_key(office)}idem:{idem}"):
                    order = [office]
                    break
        for office in order:
            try:
                return await self.store._run("task_claim", office, actor=actor, idem=idem)
            except Conflict as e:
                if e.code != "no_task":
                    raise
        raise Conflict(f"no open back-office task for {work_office}'s back office", code="no_task")

    async def finish(self, office_id: str, task_id: str, *, actor: str, idem: str | None = None) -> Result:
        """Finish a claimed task (a prepared card makes its waiting visitor callable in their place)."""
        self.store.office(office_id)
        return await self.store._run("task_finish", office_id, task=task_id, actor=actor, idem=idem)

    async def give_back(self, office_id: str, task_id: str, *, actor: str, idem: str | None = None) -> Result:
        """Give a claimed task back: open again, in its place in the work list."""
        self.store.office(office_id)
        return await self.store._run("task_return", office_id, task=task_id, actor=actor, idem=idem)

    async def references(self, tasks: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
        """The notice-postcard references of the bookings the tasks belong to, where a booking has one
        (``O bkref:{id}``, kept by the bookings area; staff views only)."""
        wanted = sorted({(str(t["office"]), str(t["booking"])) for t in tasks if t.get("booking")})
        if not wanted:
            return {}
        # One GET per key (not MGET): the offices' keys are in different slots of a cluster.
        async with self.store.redis.pipeline(transaction=False) as pipe:
            for o, b in wanted:
                pipe.get(f"{self.store.office_key(o)}bkref:{b}")
            values = await pipe.execute()
        return {key: value.decode() for key, value in zip(wanted, values, strict=True) if value is not None}

    async def measured(self, office_id: str, limit: int = 2000) -> list[dict[str, Any]]:
        """Measured back-office tasks of an office, newest first (``O tasktimes``)."""
        raw = await self.store.redis.lrange(f"{self.store.office_key(office_id)}tasktimes", 0, limit - 1)
        return [json.loads(r) for r in raw]
