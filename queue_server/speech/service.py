"""SpeechService: renders phrases to cached WAV clips, once per phrase, off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from queue_server.speech import audio
from queue_server.speech.config import Voice, parse_voices
from queue_server.speech.engines import SpeechEngine, SpeechError, SynthesisFailed
from queue_server.speech.phrases import JAPANESE, PhraseCatalog, PhraseError

logger = logging.getLogger(__name__)

CACHE_FORMAT: Final = 1
"""Part of every cache key: bump it when ``audio.finish`` changes, so old clips are not served."""

CLIP_ID: Final = re.compile(r"[0-9a-f]{32}")
DEFAULT_WORKERS: Final = 2
"""Open JTalk renders one at a time anyway; a second worker lets a pyttsx3 child run beside it."""

DEFAULT_MAX_CACHE_BYTES: Final = 512 * 1024 * 1024
"""About 2,000 clips of 5 s: several busy days of calls, the recent ones being the ones repeated."""

PRUNE_EVERY: Final = 50
"""Renders between two cache prunes: often enough to bound the folder, rarely enough to cost nothing."""

STALE_TEMP_S: Final = 3600.0
"""A temp file older than this is left over from a crash (renders take under a second)."""


class UnknownLanguage(SpeechError):
    """No voice is configured for the language."""


@dataclass(frozen=True, slots=True)
class Clip:
    """One rendered phrase: ``id`` names the file (``{id}.wav``) for the display to fetch."""

    id: str
    lang: str
    text: str
    path: Path


class SpeechService:
    """Speaks phrases through the configured engines and keeps the WAVs in ``cache_dir``.

    Files are named by a hash of engine, voice options and text, so a phrase is rendered once and
    then served from the folder (also after a restart, and to several server processes sharing
    it) until least-recently-used pruning keeps the folder under ``max_cache_bytes``. Create and
    use it inside one event loop; call ``aclose`` when done.
    """

    def __init__(
        self,
        cache_dir: Path,
        voices: Mapping[str, object] | None = None,
        *,
        source: str = "speech.voices",
        phrases: PhraseCatalog | None = None,
        workers: int = DEFAULT_WORKERS,
        max_cache_bytes: int = DEFAULT_MAX_CACHE_BYTES,
    ) -> None:
        """``voices`` overlays DEFAULT_VOICES (see ``config``); ``source`` names it in errors."""
        self._cache_dir = cache_dir
        self._voices = parse_voices(voices, source)
        self._engines: dict[str, SpeechEngine] = {lang: voice.build() for lang, voice in self._voices.items()}
        self._phrases = phrases or PhraseCatalog.load()
        missing = [lang for lang in self._phrases.languages if lang not in self._voices]
        if missing:
            raise UnknownLanguage(f"{source}: no voice for {', '.join(missing)}, which {self._phrases.source} has")
        self._max_cache_bytes = max_cache_bytes
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="speech")
        self._inflight: dict[str, asyncio.Future[Path]] = {}
        self._renders: Counter[str] = Counter()
        self._hits = 0
        self._since_prune = 0
        cache_dir.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temp_files()

    @property
    def cache_dir(self) -> Path:
        """The folder holding the rendered clips."""
        return self._cache_dir

    @property
    def render_counts(self) -> dict[str, int]:
        """Renders actually performed since start, per engine name (cache hits not counted)."""
        return dict(self._renders)

    @property
    def cache_hits(self) -> int:
        """Requests answered from the cache since start."""
        return self._hits

    def voice(self, lang: str) -> Voice:
        """The voice configured for ``lang``."""
        try:
            return self._voices[lang]
        except KeyError:
            raise UnknownLanguage(f"no voice configured for {lang!r}; have: {', '.join(self._voices)}") from None

    def clip_id(self, text: str, lang: str) -> str:
        """The cache id of ``text`` in ``lang``: a hash of engine, voice options and text."""
        identity = f"{CACHE_FORMAT}\n{self.voice(lang).identity}\n{text}"
        return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]

    def clip_path(self, clip_id: str) -> Path | None:
        """The file of a rendered clip, or None if ``clip_id`` is malformed or not rendered."""
        if not CLIP_ID.fullmatch(clip_id):
            return None  # never join an unchecked string from a URL onto a path
        path = self._cache_dir / f"{clip_id}.wav"
        return path if path.is_file() else None

    async def render(self, text: str, lang: str) -> Path:
        """The WAV of ``text`` spoken in ``lang``, rendered now or taken from the cache."""
        return (await self._clip(text, lang)).path

    async def announcement(self, number: str, counter_name: str, counter_no: str, lang: str) -> list[Clip]:
        """The clips to play after the chime for one call: Japanese, then the visitor's language.

        A visitor language that can't be spoken (unknown, or its engine missing) is logged and
        left out: the Japanese call still goes out. Japanese failing raises SpeechError.
        """
        texts = self._phrases.announcement_texts(number, counter_name, counter_no, JAPANESE)
        if lang != JAPANESE:
            try:
                texts += self._phrases.announcement_texts(number, counter_name, counter_no, lang)[1:]
            except PhraseError as error:
                logger.warning("announcing ticket %s in Japanese only: %s", number, error)
                texts = texts[:1]
        results = await asyncio.gather(*(self._clip(text, code) for code, text in texts), return_exceptions=True)
        clips: list[Clip] = []
        for (code, _), result in zip(texts, results, strict=True):
            if isinstance(result, Clip):
                clips.append(result)
            elif code != JAPANESE and isinstance(result, SpeechError):
                logger.warning("announcing ticket %s without %s: %s", number, code, result)
            else:
                raise result  # Japanese must be spoken; anything else is a bug to surface
        return clips

    async def _clip(self, text: str, lang: str) -> Clip:
        """Render ``text`` unless cached; concurrent requests for one clip share one render."""
        clip_id = self.clip_id(text, lang)
        path = self._cache_dir / f"{clip_id}.wav"
        pending = self._inflight.get(clip_id)
        if pending is None:
            if _usable(path):
                self._hits += 1
                _touch(path)
                return Clip(clip_id, lang, text, path)
            loop = asyncio.get_running_loop()
            pending = loop.run_in_executor(self._executor, self._render_file, text, lang, path)
            self._inflight[clip_id] = pending
            pending.add_done_callback(lambda _: self._inflight.pop(clip_id, None))
            pending.add_done_callback(lambda done: self._count(done, lang))
        # shield: one caller giving up must not cancel the render the others wait for.
        return Clip(clip_id, lang, text, await asyncio.shield(pending))

    def _count(self, done: asyncio.Future[Path], lang: str) -> None:
        """Record a finished render and prune the cache now and then."""
        if done.cancelled() or done.exception() is not None:
            return
        self._renders[self._voices[lang].engine] += 1
        self._since_prune += 1
        if self._since_prune >= PRUNE_EVERY:
            self._since_prune = 0
            self._executor.submit(self._prune_logged)

    def _prune_logged(self) -> None:
        """Background prune: a failure is logged, never raised into nobody's hands."""
        try:
            removed = self.prune(self._max_cache_bytes)
        except OSError:
            logger.exception("pruning the speech cache in %s failed", self._cache_dir)
        else:
            if removed:
                logger.info("pruned %d old clips from %s", removed, self._cache_dir)

    def _render_file(self, text: str, lang: str, path: Path) -> Path:
        """Synthesize, post-process and atomically write one clip (runs in a worker thread)."""
        started = time.perf_counter()
        engine = self._engines[lang]
        try:
            wav = audio.finish(engine.synthesize(text, lang))
        except audio.AudioError as error:
            raise SynthesisFailed(f"{engine.name} gave unusable audio for {text!r}: {error}") from error
        # A temp file in the same folder, then rename: readers see the whole clip or nothing.
        with tempfile.NamedTemporaryFile(dir=self._cache_dir, prefix=".render-", suffix=".tmp", delete=False) as tmp:
            try:
                tmp.write(wav)
                tmp.flush()
                os.fsync(tmp.fileno())
            except BaseException:
                os.unlink(tmp.name)
                raise
        os.replace(tmp.name, path)
        logger.info(
            "rendered %s (%s, %s) in %.0f ms", path.name, lang, engine.name, (time.perf_counter() - started) * 1000
        )
        return path

    def prune(self, max_bytes: int) -> int:
        """Delete the least recently used clips until the cache fits in ``max_bytes``; return how many."""
        entries = []
        for path in self._cache_dir.glob("*.wav"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue  # another process pruned it first
            entries.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        removed = 0
        for _, size, path in sorted(entries):
            if total <= max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
            removed += 1
        return removed

    async def aclose(self) -> None:
        """Let running renders finish and stop the worker threads (and an engine's worker process)."""
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
        for engine in self._engines.values():
            if (close := getattr(engine, "close", None)) is not None:
                await asyncio.to_thread(close)

    def _remove_stale_temp_files(self) -> None:
        """Delete temp files a crashed render left behind (not ones another process is writing)."""
        cutoff = time.time() - STALE_TEMP_S
        for tmp in self._cache_dir.glob(".render-*.tmp"):
            try:
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
            except FileNotFoundError:
                continue


def _usable(path: Path) -> bool:
    """True if ``path`` is a complete clip (more than a bare WAV header)."""
    try:
        return path.stat().st_size > 44
    except FileNotFoundError:
        return False


def _touch(path: Path) -> None:
    """Mark a clip as just used, so pruning removes the ones nobody asked for lately."""
    # Pruned between the check and now: the caller still gets a path it can ask for again.
    with contextlib.suppress(FileNotFoundError):
        os.utime(path)
