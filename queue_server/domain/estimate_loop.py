"""The wait estimator's loops, compiled: every run played forward on its own, one call per step.

:meth:`.estimate._Simulation.run` lays out every random draw in arrays first (visit durations,
arrivals, card-ready times); what is left is plain bookkeeping, a few comparisons per candidate per
step, which numpy could only do in lock-step over all runs at a dozen array calls a step. Numba
compiles this loop instead (the first call in a process loads it from numba's cache, or compiles it
in a few seconds), so its cost is the work itself: about 0.1 µs a step (``play``). The back
office's day (``work_through``), the walk-ins' arrivals (``walk_in_times``) and the streams' layout
(``lay_out_stream``) are compiled too.

The rules are the estimator's (see :mod:`.estimate`): the earliest-free counter (the first listed
on a tie) takes the best key among the heads of the ready queues (A: the same in every run), the
walk-in streams to come (B: per run, each head only once arrived) and the special candidates (S:
held tickets, booked ones whose key drops at their slot's start, booked visitors to come), the
heads winning ties. Nobody to call: the counter waits for the next arrival it serves.

Imported only where an estimate is made (the estimates worker, the benchmarks, the tests), so the
server's main process never loads numba's compiler.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

_INF = np.inf


@njit(cache=True, nogil=True)
def play(
    free0: NDArray[np.float64],  # (runs, counters): each counter's first free time
    key: NDArray[np.float64],  # (runs, width): A's keys (the same per run), then each stream's
    arrive: NDArray[np.float64],  # (runs, width): callable from (A: 0), inf in the streams' sentinels
    dur: NDArray[np.float64],  # (runs, width): visit durations at an average counter
    walk: NDArray[np.float64],  # (width,): walk-up minutes per column (phantoms: 0)
    na: int,  # A's columns (tickets, phantoms, a sentinel per queue)
    ptr0: NDArray[np.intp],  # (nq + ns,): each queue's and stream's first column
    nq: int,
    offset: NDArray[np.float64],  # (counters, nq + ns): key offset, inf where the counter does not serve it
    factor: NDArray[np.float64],  # (counters,): each counter's speed factor
    break_start: NDArray[np.float64],  # (counters, breaks), sorted, inf padded
    break_end: NDArray[np.float64],
    real_slots: int,  # A's columns that are no sentinel: the calls each run must make
    sp_before: NDArray[np.float64],  # (runs, n_sp): key before the switch
    sp_after: NDArray[np.float64],  # (runs, n_sp): key from the switch on
    sp_switch: NDArray[np.float64],  # (runs, n_sp)
    sp_avail: NDArray[np.float64],  # (runs, n_sp): callable from (inf: never)
    sp_dur: NDArray[np.float64],  # (runs, n_sp)
    sp_walk: NDArray[np.float64],  # (n_sp,)
    sp_queue: NDArray[np.intp],  # (n_sp,): each special's queue (its column of ``offset``)
    sp_out: NDArray[np.intp],  # (n_sp,): the result column of a special ticket or phantom, -1 none
    sp_link: NDArray[np.intp],  # (n_sp,): the A column of a booked ticket's second candidate, -1 none
    a_link: NDArray[np.intp],  # (width,): A column → its linked special, -1 none
    calls: NDArray[np.float64],  # out (runs, na): minutes until each A column is called, inf preset
    sp_calls: NDArray[np.float64],  # out (runs, n_out): the special tickets' and phantoms', inf preset
) -> None:
    """Play every run forward, writing the calls of A's columns and of the special tickets."""
    runs, nc = free0.shape
    heads = ptr0.shape[0]
    n_sp = sp_avail.shape[1]
    n_breaks = break_start.shape[1]
    free = np.empty(nc)
    ptr = np.empty(heads, dtype=np.intp)
    head_key = np.empty(heads)  # each head's key and callable-from time, kept beside ``ptr``: a step reads
    head_arrive = np.empty(heads)  # them for every head, and these few stay in cache (~7 % of the loop)
    served = np.empty((nc, heads), dtype=np.intp)  # each counter's heads (offset not inf), in order:
    n_served = np.zeros(nc, dtype=np.intp)  # a step looks at those only
    for c in range(nc):
        for j in range(heads):
            if offset[c, j] < _INF:
                served[c, n_served[c]] = j
                n_served[c] += 1
    gone = np.empty(n_sp, dtype=np.bool_)
    cand = np.empty(n_sp, dtype=np.intp)  # the specials callable by now and not gone, in no order
    where = np.empty(n_sp, dtype=np.intp)  # each special's place in ``cand``, -1 if not there
    # The best candidate of each queue (the same for every counter: they share the queue's offset),
    # found again only when a candidate comes or goes or a key switches: not at every step.
    q_best = np.empty(nq, dtype=np.intp)  # -1: none
    q_key = np.empty(nq)
    for r in range(runs):
        free[:] = free0[r]
        ptr[:] = ptr0
        for j in range(heads):
            head_key[j] = key[r, ptr0[j]]
            head_arrive[j] = arrive[r, ptr0[j]]
        gone[:] = False
        where[:] = -1
        n_cand = 0
        stale = True  # the queues' best candidates must be found again
        next_switch = _INF  # the first switch still ahead among the candidates
        order = np.argsort(sp_avail[r], kind="mergesort")  # the specials by the time they become callable
        due = 0  # order[due:] are not callable yet
        needed = 0
        for s in range(n_sp):
            if sp_out[s] >= 0 and sp_avail[r, s] < _INF:
                needed += 1
        passed = 0  # A columns called or skipped
        while passed < real_slots or needed > 0:
            c = 0
            for i in range(1, nc):
                if free[i] < free[c]:
                    c = i
            t = free[c]
            if t == _INF:
                break
            best = _INF
            bj = -1
            for i in range(n_served[c]):
                j = served[c, i]
                if head_arrive[j] > t:
                    continue  # not arrived yet
                k = offset[c, j] + head_key[j]
                if k < best:
                    best = k
                    bj = j
            while due < n_sp and sp_avail[r, order[due]] <= t:
                s = order[due]
                due += 1
                if not gone[s]:
                    where[s] = n_cand
                    cand[n_cand] = s
                    n_cand += 1
                    stale = True
            if stale or next_switch <= t:
                next_switch = _best_per_queue(r, t, cand, n_cand, sp_before, sp_after, sp_switch, sp_queue, q_best, q_key)
                stale = False
            best_s = _INF
            bs = -1
            for q in range(nq):
                s = q_best[q]
                if s >= 0:
                    k = offset[c, q] + q_key[q]
                    if k < best_s or (k == best_s and s < bs):  # a tie: the first listed
                        best_s = k
                        bs = s
            if best_s < best:  # a special candidate: the heads stay as they are
                out = sp_out[bs]
                if out >= 0:
                    sp_calls[r, out] = t
                    needed -= 1
                if sp_link[bs] >= 0:
                    calls[r, sp_link[bs]] = t
                n_cand = _leave(bs, gone, cand, where, n_cand)
                stale = True
                nxt = t + sp_walk[bs] + sp_dur[r, bs] * factor[c]
            elif best < _INF:
                col = ptr[bj]
                ptr[bj] = col + 1
                head_key[bj] = key[r, col + 1]
                head_arrive[bj] = arrive[r, col + 1]
                if bj < nq:
                    passed += 1
                if col < na and calls[r, col] < _INF:
                    nxt = t  # called already as its linked special (booked, from the slot's start): skipped
                else:
                    if col < na:
                        calls[r, col] = t
                        if a_link[col] >= 0:
                            n_cand = _leave(a_link[col], gone, cand, where, n_cand)
                            stale = True
                    nxt = dur[r, col] * factor[c] + walk[col] + t
            else:
                # Nobody to call: the counter waits for the next arrival it serves (inf: none). The
                # specials callable now are not its; of the rest, the first it serves comes first.
                nxt = _INF
                for i in range(n_served[c]):
                    j = served[c, i]
                    if j >= nq and head_arrive[j] < nxt:
                        nxt = head_arrive[j]
                for i in range(due, n_sp):
                    s = order[i]
                    if sp_avail[r, s] >= nxt:
                        break
                    if not gone[s] and offset[c, sp_queue[s]] < _INF:
                        nxt = sp_avail[r, s]
                        break
            for b in range(n_breaks):  # a free time inside a break moves to its end
                if break_start[c, b] <= nxt < break_end[c, b]:
                    nxt = break_end[c, b]
            free[c] = nxt


@njit(cache=True, nogil=True)
def _best_per_queue(
    r: int, t: float, cand: NDArray[np.intp], n_cand: int, sp_before: NDArray[np.float64], sp_after: NDArray[np.float64],
    sp_switch: NDArray[np.float64], sp_queue: NDArray[np.intp], q_best: NDArray[np.intp], q_key: NDArray[np.float64],
) -> float:
    """Each queue's best special candidate at ``t`` (the first listed on a tie) into ``q_best``, ``q_key``;
    the first switch after ``t`` among the candidates (inf: none), when they must be found again."""
    q_best[:] = -1
    q_key[:] = _INF
    next_switch = _INF
    for i in range(n_cand):
        s = cand[i]
        if sp_switch[r, s] <= t:
            k = sp_after[r, s]
        else:
            k = sp_before[r, s]
            next_switch = min(next_switch, sp_switch[r, s])
        q = sp_queue[s]
        if k < q_key[q] or (k == q_key[q] and s < q_best[q]):
            q_key[q] = k
            q_best[q] = s
    return next_switch


@njit(cache=True, nogil=True)
def _leave(s: int, gone: NDArray[np.bool_], cand: NDArray[np.intp], where: NDArray[np.intp], n_cand: int) -> int:
    """Special ``s`` is called (or its linked A column is): gone, and out of the candidates; their new count."""
    gone[s] = True
    i = where[s]
    if i >= 0:
        n_cand -= 1
        last = cand[n_cand]
        cand[i] = last
        where[last] = i
        where[s] = -1
    return n_cand


@njit(cache=True, nogil=True)
def _on_duty(off_start: NDArray[np.float64], off_end: NDArray[np.float64], p: int, t: float) -> float:
    """Person ``p``'s first time on duty from ``t`` on (a time inside a planned time off moves to its end)."""
    for b in range(off_start.shape[1]):
        if off_start[p, b] <= t < off_end[p, b]:
            t = off_end[p, b]
    return t


@njit(cache=True, nogil=True)
def work_through(
    free: NDArray[np.float64],  # (runs, people): when each is free (in/out)
    dur: NDArray[np.float64],  # (runs, tasks): each task's duration, in the panel's order
    n_first: int,  # the first tasks (cards of visitors waiting now), taken in order
    arrive_w: NDArray[np.float64],  # (runs, n_w): walk-ins' card tasks by arrival (inf: did not come)
    dur_w: NDArray[np.float64],  # (runs, n_w): their durations, in the same order
    rest: NDArray[np.intp],  # the remaining tasks' columns in ``dur``, in order
    off_start: NDArray[np.float64],  # (people, periods): each person's planned time off
    off_end: NDArray[np.float64],
    ends: NDArray[np.float64],  # out (runs, tasks): when each task of ``dur`` ends, inf preset
    end_w: NDArray[np.float64],  # out (runs, n_w): when each walk-in's card is ready, inf preset
) -> None:
    """The back office's day in every run: whoever is free first takes the next task.

    First the cards of the visitors waiting now, in order; then the walk-ins' cards (each from
    its arrival) before the rest whenever one exists by the time a person is free.
    """
    runs, people = free.shape
    n_w = arrive_w.shape[1]
    n_rest = rest.shape[0]
    for r in range(runs):
        row = free[r]
        for j in range(n_first):
            p = np.argmin(row)
            ends[r, j] = row[p] + dur[r, j]
            row[p] = _on_duty(off_start, off_end, p, ends[r, j])
        i_w = 0
        i_rest = 0
        while True:
            p = np.argmin(row)
            f = row[p]
            at = arrive_w[r, i_w] if i_w < n_w else _INF
            if at < _INF and (at <= f or i_rest == n_rest):
                end = _on_duty(off_start, off_end, p, max(f, at)) + dur_w[r, i_w]
                end_w[r, i_w] = end
                i_w += 1
            elif i_rest < n_rest:
                end = f + dur[r, rest[i_rest]]
                ends[r, rest[i_rest]] = end
                i_rest += 1
            else:
                break
            row[p] = _on_duty(off_start, off_end, p, end)


@njit(cache=True, nogil=True)
def walk_in_times(
    count: NDArray[np.int64],  # (runs,): how many walk-ins come in each run
    gaps: NDArray[np.float64],  # (count.sum() + runs,): standard exponentials, taken in order
    horizon: float,  # minutes until closing
    times: NDArray[np.float64],  # out (runs, >= count.max()): their arrivals, sorted, inf after
) -> None:
    """Each run's walk-ins as ``count`` uniform order statistics on (0, horizon): normalised sums of
    ``count + 1`` exponential gaps. Only as many draws as walk-ins, not the busiest run's for all."""
    runs, width = times.shape
    i = 0
    for r in range(runs):
        n = count[r]
        total = 0.0
        for k in range(n + 1):
            total += gaps[i + k]
        scale = horizon / total
        at = 0.0
        for k in range(n):
            at += gaps[i + k]
            times[r, k] = at * scale
        for k in range(n, width):
            times[r, k] = _INF
        i += n + 1


@njit(cache=True, nogil=True)
def lay_out_stream(
    arrive: NDArray[np.float64],  # (runs, n): one walk-in stream's arrivals (inf: did not come), sorted
    ready: NDArray[np.float64],  # (runs, n): their cards' ready times, or (runs, 0): no card to wait for
    base: float,  # the stream's key at arrival 0
    per_minute: float,  # key units per minute of arrival
    max_minutes: float,  # arrivals later than this keep its key
    scale: NDArray[np.float64],  # (runs,): each run's visit scale for the stream's procedure
    unit: NDArray[np.floating],  # (walk-ins,): a visit's length in units of ``scale``, one per walk-in, in order
    key: NDArray[np.float64],  # out (runs, n)
    callable_from: NDArray[np.float64],  # out (runs, n)
    dur: NDArray[np.float64],  # out (runs, n): the walk-ins' visits (0 where none came)
) -> None:
    """One stream's keys (its place: after everybody waiting now, by arrival), callable-from times and visits.

    A walk-in waiting for a card is callable once it is ready; the stream stays first come first
    served, so those times are made non-decreasing (a card for a later walk-in ready first waits
    for the earlier one's).
    """
    runs, n = arrive.shape
    cards = ready.shape[1] > 0
    i = 0
    for r in range(runs):
        latest = 0.0
        for k in range(n):
            a = arrive[r, k]
            if a == _INF:
                key[r, k] = _INF
                callable_from[r, k] = _INF
                dur[r, k] = 0.0
                continue
            key[r, k] = base + min(a, max_minutes) * per_minute
            dur[r, k] = scale[r] * unit[i]
            i += 1
            if cards:
                latest = max(latest, ready[r, k])
                callable_from[r, k] = latest
            else:
                callable_from[r, k] = a
