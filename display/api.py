"""Call announcements as audio: which clips to play for a call or a group of calls, and the clips.

``GET /api/offices/{office}/announcement?number=123&counter=3[&lang=en]`` answers the clips to
play for one call in order — the chime, the Japanese call, then the visitor's language when it
is not Japanese — as URLs under ``/api/audio/``.
``…/announcement?calls=101:3,102:3,205:5&recalls=88:1`` does the same for calls spoken together
(``number:counter``, first calls and recalls, at most ``MAX_GROUP``, each number once): one
Japanese clip with every number, then one clip per other language of those visitors (the
tickets' own languages) with their numbers. Both answer once the Japanese clip exists (see
``announcements``); ``GET /api/audio/{id}.wav`` waits for a clip whose render is under way.
Clip ids are content hashes, so a clip URL never changes meaning and is cached forever.
Only calls that happened are spoken, so nobody can make the server render arbitrary text.
"""

from __future__ import annotations

import logging
import re
import wave
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from queue_server.config import Office
from queue_server.domain.model import Counter, NotFound
from queue_server.domain.state import OfficeState, ticket_key
from queue_server.speech.phrases import JAPANESE, Called, PhraseError
from queue_server.web.keys import HUB, STORE
from queue_server.web.messages import ApiError, json_response
from queue_server.web.openapi import add_paths, operation
from queue_server.web.validation import Field, check_fields, max_length, one_of
from queue_server.web.views import LANGUAGES

from .announcements import ANNOUNCEMENTS, ClipRef, setup_speech

log = logging.getLogger(__name__)

CHIME_PATH: Final = Path(__file__).with_name("static") / "chime.wav"
CHIME_URL: Final = "/api/audio/chime.wav"
AUDIO_CACHE_CONTROL: Final = "public, max-age=31536000, immutable"
RENDER_TIMEOUT_S: Final = 15.0
"""Longer than any render takes (pyttsx3's child process has its own, shorter, time limit)."""

TICKET_NUMBER: Final = re.compile(r"[A-Za-z0-9-]{1,8}")
CALL_ITEM: Final = re.compile(r"([A-Za-z0-9-]{1,8}):([a-z0-9][a-z0-9_-]{0,31})")
"""One call of a group, ``number:counter`` (counter ids are config ids: no ':' or ',' in either)."""
MAX_GROUP: Final = 8
"""Calls spoken together at most: eight take about 20 s to say, longer than any backlog should grow."""
DURATION_HEADER: Final = "X-Clip-Duration-Ms"
"""On every clip: its length, so a display can tell whether it has time to play it (HEAD suffices)."""


def _call_list(value: str) -> str | None:
    """Why ``value`` is not a list of ``number:counter`` calls, or None."""
    for index, item in enumerate(value.split(","), start=1):
        if not CALL_ITEM.fullmatch(item):
            return (f"must list calls as number:counter separated by commas, e.g. 101:3,205:5; "
                    f"item {index} ({item[:20]!r}) is not one")
    return None


def _ticket_number(value: str) -> str | None:
    return None if TICKET_NUMBER.fullmatch(value) else "must be a ticket number like 123 or A012"


QUERY_SCHEMA: Final = {
    "number": Field(str, check=_ticket_number),
    "counter": Field(str, check=max_length(32)),
    "lang": Field(str, check=one_of(*LANGUAGES)),
    "calls": Field(str, check=_call_list),
    "recalls": Field(str, check=_call_list),
}
SINGLE_FIELDS: Final = ("number", "counter", "lang")
GROUP_FIELDS: Final = ("calls", "recalls")


def _called(state: OfficeState, number: str, counter: str) -> dict[str, Any] | None:
    """The ticket ``number`` as called to ``counter`` (now active, or among the recent calls)."""
    active = state.active.get(ticket_key(state.day, number))
    if active is not None and active.get("counter") == counter:
        return active
    return next((c for c in state.recent if c["number"] == number and c["counter"] == counter), None)


async def _find_call(request: web.Request, office: Office, number: str, counter: str) -> Mapping[str, Any]:
    """The call being announced, from the live state, else from the store.

    The store answers a client that asks right after its own call, before the call's event has
    reached this process.
    """
    state = request.app[HUB].state(office.id)
    call = _called(state, number, counter)
    if call is None:
        try:
            ticket = await request.app[STORE].ticket(office.id, state.day, number)
        except NotFound:
            ticket = {}
        if ticket.get("state") in ("called", "serving") and ticket.get("counter") == counter:
            call = ticket
    if call is None:
        raise NotFound(f"ticket {number} has not been called to counter {counter} recently")
    return call


def _query(request: web.Request) -> dict[str, Any]:
    """The announcement's query, checked: one call (number, counter[, lang]) or a group (calls, recalls)."""
    for name in request.query:
        if len(request.query.getall(name)) > 1:
            raise ApiError("invalid_request", f"field {name!r} is given more than once; give it once", field=name)
    query = check_fields(dict(request.query), QUERY_SCHEMA, where="query")
    group = [name for name in GROUP_FIELDS if query[name] is not None]
    single = [name for name in SINGLE_FIELDS if query[name] is not None]
    if group and single:
        raise ApiError("invalid_request", f"field {single[0]!r} is for one call; a group lists each call in calls "
                       "or recalls as number:counter, in the ticket's own language", field=single[0])
    if not group:
        for name in ("number", "counter"):
            if query[name] is None:
                raise ApiError("invalid_request", f"field {name!r} is required (or calls=number:counter,…)", field=name)
    return query


def _group(query: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """(number, counter id, recall) of a group's query, each number once, at most MAX_GROUP."""
    calls: list[tuple[str, str, bool]] = []
    listed: dict[str, str] = {}
    for name in GROUP_FIELDS:
        items = query[name].split(",") if query[name] is not None else []
        for number, counter in (item.split(":") for item in items):  # each item checked by _call_list
            if number in listed:
                raise ApiError("invalid_request", f"field {name!r}: ticket {number} is listed twice (also in "
                               f"{listed[number]}); list each number once, as its newest call", field=name)
            listed[number] = name
            calls.append((number, counter, name == "recalls"))
    if len(calls) > MAX_GROUP:
        field = "recalls" if query["recalls"] is not None and query["calls"] is None else "calls"
        raise ApiError("invalid_request", f"field {field!r}: at most {MAX_GROUP} calls are spoken together, got "
                       f"{len(calls)}", field=field)
    return calls


def _counter(office: Office, counter_id: str) -> Counter:
    """The office's counter ``counter_id``, or NotFound naming the counters there are."""
    counter = office.counters.get(counter_id)
    if counter is None:
        raise NotFound(f"no counter {counter_id!r} at {office.id}; counters: {', '.join(office.counters)}")
    return counter


def _duration_ms(path: Path) -> int | None:
    """A rendered clip's length in milliseconds (from its WAV header), None if unreadable."""
    try:
        with wave.open(str(path), "rb") as clip:
            return round(clip.getnframes() * 1000 / clip.getframerate())
    except (OSError, EOFError, wave.Error):
        return None


def _clip_answer(clip: ClipRef, path: Path | None) -> dict[str, Any]:
    """One speech clip as the display plays it; its length when it is rendered already."""
    answer = {"url": f"/api/audio/{clip.id}.wav", "kind": "speech", "lang": clip.lang, "text": clip.text,
              "numbers": list(clip.numbers)}
    if path is not None and (duration := _duration_ms(path)) is not None:
        answer["duration_ms"] = duration
    return answer


async def get_announcement(request: web.Request) -> web.Response:
    """GET /api/offices/{office}/announcement — the clips of one call, or of calls spoken together, in order."""
    office = request.app[STORE].office(request.match_info["office"])
    query = _query(request)
    if query["number"] is not None:
        requested = [(query["number"], query["counter"], False)]
    else:
        requested = _group(query)
    calls: list[Called] = []
    for number, counter_id, recall in requested:
        counter = _counter(office, counter_id)
        call = await _find_call(request, office, number, counter_id)
        lang = query["lang"] or call.get("lang") or JAPANESE
        calls.append(Called(number, counter.name, counter.id, recall=recall, lang=lang))
    announcements = request.app[ANNOUNCEMENTS]
    try:
        clips = announcements.start(calls)
    except PhraseError as e:
        raise ApiError("invalid_request", str(e), field="number" if query["number"] is not None else "calls") from e
    first = await announcements.ready(clips[0].id, RENDER_TIMEOUT_S) if clips and clips[0].lang == JAPANESE else None
    if first is None:
        log.error("no Japanese announcement for ticket(s) %s at %s", ", ".join(c.number for c in calls), office.id)
        raise ApiError("unavailable", "the announcement could not be rendered; play the chime alone")
    audio = [{"url": CHIME_URL, "kind": "chime"}]
    audio += [_clip_answer(clip, first if index == 0 else announcements.speech.clip_path(clip.id))
              for index, clip in enumerate(clips)]
    if query["number"] is not None:
        answer: dict[str, Any] = {"number": calls[0].number, "counter": calls[0].counter_no, "lang": calls[0].lang}
    else:
        answer = {"calls": [{"number": c.number, "counter": c.counter_no, "lang": c.lang, "recall": c.recall}
                            for c in calls]}
    return json_response({"office": office.id, **answer, "audio": audio})


async def get_audio(request: web.Request) -> web.FileResponse:
    """GET /api/audio/{clip}.wav — one rendered clip (ids are checked, never joined unchecked)."""
    path = await request.app[ANNOUNCEMENTS].ready(request.match_info["clip"], RENDER_TIMEOUT_S)
    if path is None:
        raise NotFound("no such audio clip (ids come from /api/offices/{office}/announcement)")
    headers = {"Cache-Control": AUDIO_CACHE_CONTROL, "Content-Type": "audio/wav"}
    if (duration := _duration_ms(path)) is not None:
        headers[DURATION_HEADER] = str(duration)
    return web.FileResponse(path, headers=headers)


async def get_chime(request: web.Request) -> web.FileResponse:
    """GET /api/audio/chime.wav — the call chime."""
    return web.FileResponse(CHIME_PATH, headers={"Cache-Control": "public, max-age=86400",
                                                 "Content-Type": "audio/wav"})


def _param(name: str, description: str, where: str = "query", required: bool = True,
           pattern: str | None = None) -> dict[str, Any]:
    schema = {"type": "string", **({"pattern": f"^{pattern}$"} if pattern else {})}
    return {"name": name, "in": where, "required": required, "description": description, "schema": schema}


def setup_api(app: web.Application) -> None:
    """Register the announcement endpoints, their documentation and the speech service's lifecycle."""
    setup_speech(app)
    app.router.add_get("/api/offices/{office}/announcement", get_announcement)
    app.router.add_get(CHIME_URL, get_chime)
    app.router.add_get("/api/audio/{clip:[0-9a-f]{32}}.wav", get_audio)
    add_paths(app, {
        "/api/offices/{office}/announcement": {"get": operation(
            "The audio of a call, or of calls spoken together, in playing order: chime, Japanese (every "
            "number), each visitor language (its own numbers)",
            "{office, number, counter, lang | calls: [{number, counter, lang, recall}], "
            "audio: [{url, kind: chime|speech, lang, text, numbers, duration_ms (when rendered)}]}",
            params=[_param("office", "the office", "path"),
                    _param("number", "one call: the called ticket's number", required=False,
                           pattern=TICKET_NUMBER.pattern),
                    _param("counter", "one call: the counter it was called to", required=False),
                    _param("lang", "one call: the visitor's language (default: the ticket's)", required=False),
                    _param("calls", f"calls spoken together, number:counter separated by commas (at most "
                           f"{MAX_GROUP} with recalls, each number once)", required=False,
                           pattern=f"{CALL_ITEM.pattern}(,{CALL_ITEM.pattern})*"),
                    _param("recalls", "recalls among them, as calls: said to be called again", required=False,
                           pattern=f"{CALL_ITEM.pattern}(,{CALL_ITEM.pattern})*")])},
        "/api/audio/{clip}.wav": {"get": operation(
            f"One audio clip (WAV, mono 16-bit); immutable, cache forever; {DURATION_HEADER}: its length",
            "audio/wav",
            params=[_param("clip", "32 hex digits, from the announcement", "path")])},
        CHIME_URL: {"get": operation("The call chime (WAV), played before every announcement", "audio/wav")},
    })
