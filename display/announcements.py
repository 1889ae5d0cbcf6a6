"""The speech behind the display: the clips of a call or of calls spoken together, rendered ahead.

An announcement is one call, or the calls that waited on the display behind one another, spoken
together (``queue_server.speech.phrases``): in Japanese with every number, then in each other
language of the visitors, with that language's numbers. The display needs the chime first
(1.7 s, none back to back), then the Japanese clip, and the other clips only seconds later; so
the announcement endpoint answers once the Japanese clip exists, and a request for another clip
waits for its render if it is still running.

Every ``ticket.called`` and ``ticket.recalled`` event the hub delivers starts the renders of
that call alone at once, so the display's request, made when it gets the same event, finds them
done or under way. Which calls a display speaks together depends on when its previous
announcement ends, which only the display knows: it asks for a group as soon as the group forms,
while the announcement before it still plays. The :class:`~queue_server.speech.SpeechService`
caches clips by a hash of voice and text: the same words another time are a cache hit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from queue_server.config import Config, Office
from queue_server.domain.state import OfficeState
from queue_server.speech import PhraseCatalog, PhraseError, SpeechConfigError, SpeechError, SpeechService
from queue_server.speech.phrases import JAPANESE, Called
from queue_server.web.keys import CONFIG, HUB

log = logging.getLogger(__name__)

MAX_PENDING: Final = 64
"""Clips rendering ahead at once; a burst beyond this is rendered when the display asks."""

CALL_EVENTS: Final = frozenset({"ticket.called", "ticket.recalled"})
SPEECH_KEYS: Final = frozenset({"voices"})


@dataclass(frozen=True, slots=True)
class ClipRef:
    """One clip of an announcement: its cache id (the file ``{id}.wav``), language, words, and the
    ticket numbers it speaks."""

    id: str
    lang: str
    text: str
    numbers: tuple[str, ...]


class Announcements:
    """Starts the renders of a call's clips and lets a request wait for one of them."""

    def __init__(self, speech: SpeechService, phrases: PhraseCatalog | None = None) -> None:
        self.speech = speech
        self.phrases = phrases or PhraseCatalog.load()
        self.pending: dict[str, asyncio.Task[Path]] = {}

    def texts(self, calls: Sequence[Called]) -> list[tuple[str, str, tuple[str, ...]]]:
        """(language, words, numbers) of calls spoken together: Japanese, then each visitor language
        that has phrases. Raises PhraseError when a number or counter can't be spoken at all."""
        texts = self.phrases.group_texts(calls)
        for lang in {call.lang for call in calls} - {JAPANESE} - {lang for lang, _, _ in texts}:
            log.warning("announcing %s in Japanese only: no call phrases for %r",
                        ", ".join(call.number for call in calls if call.lang == lang), lang)
        return texts

    def start(self, calls: Sequence[Called]) -> list[ClipRef]:
        """Start rendering each clip of an announcement that isn't already under way; never awaits.

        The visitors' languages render after the Japanese clip, not beside it: on a busy machine
        they would slow each other down, and those clips are played seconds later anyway.
        """
        clips: list[ClipRef] = []
        first: asyncio.Task[Path] | None = None
        for code, text, numbers in self.texts(calls):
            try:
                clip = ClipRef(self.speech.clip_id(text, code), code, text, numbers)
            except SpeechError as error:  # no voice configured for the language
                log.warning("announcing %s without %s: %s", ", ".join(numbers), code, error)
                continue
            task = self.pending.get(clip.id)
            if task is None:
                task = asyncio.get_running_loop().create_task(self._render(first, text, code), name=f"speech-{clip.id}")
                self.pending[clip.id] = task
                task.add_done_callback(lambda done, clip_id=clip.id: self._done(clip_id, done))
            first = first or task
            clips.append(clip)
        return clips

    async def _render(self, after: asyncio.Task[Path] | None, text: str, lang: str) -> Path:
        """Render one clip once ``after`` (the Japanese clip) is done, whether it worked or not."""
        if after is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(after)
        return await self.speech.render(text, lang)

    def _done(self, clip_id: str, task: asyncio.Task[Path]) -> None:
        """Forget a finished render; a failure is logged here (a waiting request sees it too)."""
        self.pending.pop(clip_id, None)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.warning("rendering clip %s failed: %s", clip_id, error)

    async def ready(self, clip_id: str, timeout: float) -> Path | None:
        """The clip's file, after its render if one is running; None if it has none or failed."""
        task = self.pending.get(clip_id)
        if task is not None:
            try:
                # shield: a display that gives up must not cancel the render others wait for.
                await asyncio.wait_for(asyncio.shield(task), timeout)
            except (SpeechError, TimeoutError) as error:
                log.warning("clip %s is not ready: %s", clip_id, error or "timed out")
                return None
        return self.speech.clip_path(clip_id)

    async def close(self) -> None:
        """Stop the renders still running (their files are written atomically or not at all)."""
        for task in list(self.pending.values()):
            task.cancel()
        await asyncio.gather(*self.pending.values(), return_exceptions=True)


class Prerenderer:
    """A hub subscriber that starts rendering each call's announcement the moment the call happens."""

    def __init__(self, announcements: Announcements, office: Office, subscribers: set[Any]) -> None:
        self.announcements = announcements
        self.office = office
        self.subscribers = subscribers  # the hub's subscribers of this office

    def display_connected(self) -> bool:
        """Whether a lobby display follows this office: nobody else will ask for the audio."""
        return any(getattr(s, "view", None) == "lobby" for s in self.subscribers)

    def on_snapshot(self, state: OfficeState) -> None:
        """A fresh state says nothing about new calls: nothing to render."""

    def on_event(self, event: dict[str, Any], state: OfficeState) -> None:
        """Start the renders of a call spoken alone (never awaits: the hub delivers to everyone in one step)."""
        if event.get("type") not in CALL_EVENTS or not event.get("ticket") or not event.get("counter"):
            return
        if not self.display_connected():
            return  # rendered on demand if a display connects later and asks
        ticket = event["ticket"]
        counter = self.office.counters.get(event["counter"]["id"])
        if counter is None:
            return
        if len(self.announcements.pending) >= MAX_PENDING:
            log.warning("%d clips already rendering; ticket %s renders when a display asks",
                        len(self.announcements.pending), ticket["number"])
            return
        call = Called(ticket["number"], counter.name, counter.id, recall=event["type"] == "ticket.recalled",
                      lang=ticket.get("lang") or JAPANESE)
        try:
            self.announcements.start([call])
        except PhraseError as error:
            log.warning("ticket %s can't be announced: %s", ticket["number"], error)


SPEECH: Final = web.AppKey("speech", SpeechService)
ANNOUNCEMENTS: Final = web.AppKey("announcements", Announcements)
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
    """Open the speech service for the app's lifetime; close it (after the renders) at shutdown."""
    app[SPEECH] = create_speech(app[CONFIG])
    app[ANNOUNCEMENTS] = Announcements(app[SPEECH])
    app[PRERENDERERS] = {}
    try:
        yield
    finally:
        hub = app.get(HUB)
        for office, prerenderer in app[PRERENDERERS].items():
            if hub is not None:
                hub.unsubscribe(office, prerenderer)
        await app[ANNOUNCEMENTS].close()
        await app[SPEECH].aclose()


async def start_prerendering(app: web.Application) -> None:
    """Follow every office's calls (on_startup runs after every cleanup_ctx: the hub is ready)."""
    for office in app[CONFIG].offices.values():
        prerenderer = Prerenderer(app[ANNOUNCEMENTS], office, app[HUB].subscribers[office.id])
        app[PRERENDERERS][office.id] = prerenderer
        app[HUB].subscribe(office.id, prerenderer)


def setup_speech(app: web.Application) -> None:
    """Open and close the speech service with the app, and pre-render every call."""
    app.cleanup_ctx.append(speech_context)
    app.on_startup.append(start_prerendering)
