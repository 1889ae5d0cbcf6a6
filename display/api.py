"""Call announcements as audio: which clips to play for a call, and the clips themselves.

``GET /api/offices/{office}/announcement?number=123&counter=3[&lang=en]`` answers the clips to
play in order — the chime, the Japanese call, then the visitor's language when it is not
Japanese — as URLs under ``/api/audio/``. Clips are rendered offline by the
:class:`~queue_server.speech.SpeechService` and cached by a hash of voice and text, so a clip
URL never changes meaning and may be cached by the browser forever.

So that the display's request finds its clips ready, every ``ticket.called`` and
``ticket.recalled`` event the hub delivers starts rendering that call's announcement at once.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from queue_server.config import Config, Office
from queue_server.domain.model import NotFound
from queue_server.domain.state import OfficeState
from queue_server.speech import Clip, SpeechConfigError, SpeechError, SpeechService
from queue_server.speech.phrases import PhraseError
from queue_server.web.keys import CONFIG, HUB, STORE
from queue_server.web.messages import ApiError, json_response
from queue_server.web.validation import Field, check_fields, max_length, one_of
from queue_server.web.views import LANGUAGES

log = logging.getLogger(__name__)

CHIME_PATH: Final = Path(__file__).with_name("static") / "chime.wav"
CHIME_URL: Final = "/api/audio/chime.wav"
AUDIO_CACHE_CONTROL: Final = "public, max-age=31536000, immutable"
"""Clip ids are content hashes: the same URL is always the same sound."""

RENDER_TIMEOUT_S: Final = 15.0
"""Longer than any render takes (pyttsx3's child process has its own, shorter, time limit)."""

MAX_PRERENDERS: Final = 64
"""Announcements rendering ahead at once; a burst beyond this is rendered when the display asks."""

CALL_EVENTS: Final = frozenset({"ticket.called", "ticket.recalled"})
SPEECH_KEYS: Final = frozenset({"voices"})

TICKET_NUMBER: Final = re.compile(r"[A-Za-z0-9-]{1,8}")

QUERY_SCHEMA: Final = {
    "number": Field(str, required=True,
                    check=lambda v: None if TICKET_NUMBER.fullmatch(v) else "must be a ticket number like 123 or A012"),
    "counter": Field(str, required=True, check=max_length(32)),
    "lang": Field(str, check=one_of(*LANGUAGES)),
}


class Prerenderer:
    """A hub subscriber that renders each call's announcement the moment the call happens."""

    def __init__(self, speech: SpeechService, office: Office) -> None:
        self.speech = speech
        self.office = office
        self.tasks: set[asyncio.Task[list[Clip]]] = set()

    def on_snapshot(self, state: OfficeState) -> None:
        """A fresh state says nothing about new calls: nothing to render."""

    def on_event(self, event: dict[str, Any], state: OfficeState) -> None:
        """Start rendering a call's announcement in the background (never awaits)."""
        if event.get("type") not in CALL_EVENTS or not event.get("ticket") or not event.get("counter"):
            return
        counter = self.office.counters.get(event["counter"]["id"])
        if counter is None:
            return
        if len(self.tasks) >= MAX_PRERENDERS:
            log.warning("%d announcements already rendering; ticket %s will render on request",
                        len(self.tasks), event["ticket"]["number"])
            return
        ticket = event["ticket"]
        task = asyncio.get_running_loop().create_task(
            self.speech.announcement(ticket["number"], counter.name, counter.id, ticket.get("lang") or "ja"),
            name=f"prerender-{self.office.id}-{ticket['number']}")
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[list[Clip]]) -> None:
        """Forget a finished render; a failure is logged, the display's request will retry it."""
        self.tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.warning("pre-rendering %s failed: %s", task.get_name(), error)

    async def close(self) -> None:
        """Stop the renders still running (their files are written atomically or not at all)."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


SPEECH: Final = web.AppKey("speech", SpeechService)
PRERENDERERS: Final = web.AppKey("speech_prerenderers", dict[str, Prerenderer])


def create_speech(config: Config) -> SpeechService:
    """The speech service of a configuration: cache in ``data_dir/speech``, voices from ``[speech.voices]``."""
    speech: Mapping[str, Any] = config.speech
    unknown = set(speech) - SPEECH_KEYS
    if unknown:
        raise SpeechConfigError(f"{config.source}: [speech] has unknown keys {sorted(unknown)}; allowed: voices")
    voices = speech.get("voices", {})
    if not isinstance(voices, Mapping):
        raise SpeechConfigError(f"{config.source}: [speech.voices] must be a table of languages")
    return SpeechService(config.server.data_dir / "speech", voices, source=f"{config.source}: speech.voices")


async def speech_context(app: web.Application) -> AsyncIterator[None]:
    """Open the speech service for the app's lifetime; close it (after the pre-renders) at shutdown."""
    app[SPEECH] = create_speech(app[CONFIG])
    app[PRERENDERERS] = {}
    try:
        yield
    finally:
        hub = app.get(HUB)
        for office, prerenderer in app[PRERENDERERS].items():
            if hub is not None:
                hub.unsubscribe(office, prerenderer)
            await prerenderer.close()
        await app[SPEECH].aclose()


async def start_prerendering(app: web.Application) -> None:
    """Follow every office's calls (on_startup runs after every cleanup_ctx: the hub is ready)."""
    for office in app[CONFIG].offices.values():
        prerenderer = Prerenderer(app[SPEECH], office)
        app[PRERENDERERS][office.id] = prerenderer
        app[HUB].subscribe(office.id, prerenderer)


def _called(state: OfficeState, number: str, counter: str) -> dict[str, Any] | None:
    """The ticket ``number`` as called to ``counter`` (now active, or among the recent calls)."""
    active = state.active.get(number)
    if active is not None and active.get("counter") == counter:
        return active
    return next((c for c in state.recent if c["number"] == number and c["counter"] == counter), None)


async def _find_call(request: web.Request, office: Office, number: str, counter: str) -> Mapping[str, Any]:
    """The call being announced; only calls that happened are spoken, so no one renders arbitrary text.

    The live state answers at once; the store answers a client that asks right after its own call,
    before the call's event has reached this process.
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
    lang = query["lang"] or call.get("lang") or "ja"
    try:
        clips = await asyncio.wait_for(request.app[SPEECH].announcement(number, counter.name, counter.id, lang),
                                       RENDER_TIMEOUT_S)
    except PhraseError as e:
        raise ApiError("invalid_request", str(e), field="number") from e
    except (SpeechError, TimeoutError) as e:
        log.error("no announcement for ticket %s at %s: %s", number, office.id, e)
        raise ApiError("unavailable", "the announcement could not be rendered; play the chime alone") from e
    audio = [{"url": CHIME_URL, "kind": "chime"}]
    audio += [{"url": f"/api/audio/{clip.id}.wav", "kind": "speech", "lang": clip.lang, "text": clip.text}
              for clip in clips]
    return json_response({"office": office.id, "number": number, "counter": counter.id, "lang": lang,
                          "audio": audio})


async def get_audio(request: web.Request) -> web.FileResponse:
    """GET /api/audio/{clip}.wav — one rendered clip (ids are checked, never joined unchecked)."""
    path = request.app[SPEECH].clip_path(request.match_info["clip"])
    if path is None:
        raise NotFound("no such audio clip (ids come from /api/offices/{office}/announcement)")
    return web.FileResponse(path, headers={"Cache-Control": AUDIO_CACHE_CONTROL, "Content-Type": "audio/wav"})


async def get_chime(request: web.Request) -> web.FileResponse:
    """GET /api/audio/chime.wav — the call chime."""
    return web.FileResponse(CHIME_PATH, headers={"Cache-Control": "public, max-age=86400",
                                                 "Content-Type": "audio/wav"})


def setup_api(app: web.Application) -> None:
    """Register the announcement endpoints and the speech service's lifecycle."""
    app.cleanup_ctx.append(speech_context)
    app.on_startup.append(start_prerendering)
    app.router.add_get("/api/offices/{office}/announcement", get_announcement)
    app.router.add_get(CHIME_URL, get_chime)
    app.router.add_get("/api/audio/{clip:[0-9a-f]{32}}.wav", get_audio)
