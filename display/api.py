"""Call announcements as audio: which clips to play for a call, and the clips themselves.

``GET /api/offices/{office}/announcement?number=123&counter=3[&lang=en]`` answers the clips to
play in order — the chime, the Japanese call, then the visitor's language when it is not
Japanese — as URLs under ``/api/audio/``. It answers once the Japanese clip exists (see
``announcements``); ``GET /api/audio/{id}.wav`` waits for a clip whose render is under way.
Clip ids are content hashes, so a clip URL never changes meaning and is cached forever.
Only calls that happened are spoken, so nobody can make the server render arbitrary text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from queue_server.config import Office
from queue_server.domain.model import NotFound
from queue_server.domain.state import OfficeState, ticket_key
from queue_server.speech.phrases import JAPANESE, PhraseError
from queue_server.web.keys import HUB, STORE
from queue_server.web.messages import ApiError, json_response
from queue_server.web.openapi import add_paths, operation
from queue_server.web.validation import Field, check_fields, max_length, one_of
from queue_server.web.views import LANGUAGES

from .announcements import ANNOUNCEMENTS, setup_speech

log = logging.getLogger(__name__)

CHIME_PATH: Final = Path(__file__).with_name("static") / "chime.wav"
CHIME_URL: Final = "/api/audio/chime.wav"
AUDIO_CACHE_CONTROL: Final = "public, max-age=31536000, immutable"
RENDER_TIMEOUT_S: Final = 15.0
"""Longer than any render takes (pyttsx3's child process has its own, shorter, time limit)."""

TICKET_NUMBER: Final = re.compile(r"[A-Za-z0-9-]{1,8}")
QUERY_SCHEMA: Final = {
    "number": Field(str, required=True,
                    check=lambda v: None if TICKET_NUMBER.fullmatch(v) else "must be a ticket number like 123 or A012"),
    "counter": Field(str, required=True, check=max_length(32)),
    "lang": Field(str, check=one_of(*LANGUAGES)),
}


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


async def get_announcement(request: web.Request) -> web.Response:
    """GET /api/offices/{office}/announcement?number=&counter=[&lang=] — the clips of one call, in order."""
    office = request.app[STORE].office(request.match_info["office"])
    query = check_fields(dict(request.query), QUERY_SCHEMA, where="query")
    number, counter_id = query["number"], query["counter"]
    counter = office.counters.get(counter_id)
    if counter is None:
        raise NotFound(f"no counter {counter_id!r} at {office.id}; counters: {', '.join(office.counters)}")
    call = await _find_call(request, office, number, counter_id)
    lang = query["lang"] or call.get("lang") or JAPANESE
    announcements = request.app[ANNOUNCEMENTS]
    try:
        clips = announcements.start(number, counter, lang)
    except PhraseError as e:
        raise ApiError("invalid_request", str(e), field="number") from e
    if not clips or clips[0].lang != JAPANESE or await announcements.ready(clips[0].id, RENDER_TIMEOUT_S) is None:
        log.error("no Japanese announcement for ticket %s at %s", number, office.id)
        raise ApiError("unavailable", "the announcement could not be rendered; play the chime alone")
    audio = [{"url": CHIME_URL, "kind": "chime"}]
    audio += [{"url": f"/api/audio/{clip.id}.wav", "kind": "speech", "lang": clip.lang, "text": clip.text}
              for clip in clips]
    return json_response({"office": office.id, "number": number, "counter": counter.id, "lang": lang,
                          "audio": audio})


async def get_audio(request: web.Request) -> web.FileResponse:
    """GET /api/audio/{clip}.wav — one rendered clip (ids are checked, never joined unchecked)."""
    path = await request.app[ANNOUNCEMENTS].ready(request.match_info["clip"], RENDER_TIMEOUT_S)
    if path is None:
        raise NotFound("no such audio clip (ids come from /api/offices/{office}/announcement)")
    return web.FileResponse(path, headers={"Cache-Control": AUDIO_CACHE_CONTROL, "Content-Type": "audio/wav"})


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
            "The audio of a call, in playing order: chime, Japanese, the visitor's language",
            "{office, number, counter, lang, audio: [{url, kind: chime|speech, lang, text}]}",
            params=[_param("office", "the office", "path"),
                    _param("number", "the called ticket's number", pattern=TICKET_NUMBER.pattern),
                    _param("counter", "the counter it was called to"),
                    _param("lang", "the visitor's language (default: the ticket's)", required=False)])},
        "/api/audio/{clip}.wav": {"get": operation(
            "One audio clip (WAV, mono 16-bit); immutable, cache forever", "audio/wav",
            params=[_param("clip", "32 hex digits, from the announcement", "path")])},
        CHIME_URL: {"get": operation("The call chime (WAV), played before every announcement", "audio/wav")},
    })
