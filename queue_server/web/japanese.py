"""Visitor-facing Japanese as HTML: lines broken between phrases, readings (ruby) for やさしい日本語.

Browsers break Japanese between any two characters, so a narrow kiosk button or phone wraps
「くださ／い」 or 「状況／を」. :meth:`JapaneseText.html` splits a text into phrases with BudouX
(Google's phrase segmenter, made for exactly this) and joins them with ``<wbr>`` inside a
``<span class="phrases">``, which ``common.css`` sets to ``word-break: keep-all; overflow-wrap:
anywhere``: lines break only between phrases, and a phrase wider than the line still wraps.

With ``ruby=True`` (やさしい日本語 pages) every kanji word gets its reading,
``<ruby>窓口<rt>まどぐち</rt></ruby>``, as Open JTalk with Sudachi's readings of kanji reads it
(pyopenjtalk-plus, also the voice), with okurigana outside the ruby (``<ruby>越<rt>こ</rt></ruby>し``).
The configuration's ``[readings]`` table (word → kana) overrides it where it reads a word wrongly.

Open JTalk and Sudachi map 140 MB of dictionaries, so the server process never loads them
(ARCHITECTURE.md, Pages): :class:`KnownReadings` starts from ``readings.json``, shipped beside this
file with the readings of every catalog text and of the demo's names (``python -m
queue_server.web.readings --write`` makes it; a test checks it is up to date); the texts of a
city's own configuration missing there are analysed at startup, in one batch, by a child process
(``readings.py``) that exits when done; a text first met on a request is shown without readings and
analysed in the background, for the next request.

Catalog texts keep their ``{placeholders}`` as they are (the page script fills them, escaping the
values); a number in front of a counter word is read as 5 would be (5 人 → にん, 5 分 → ふん).
Every text is rendered once and kept (:meth:`JapaneseText.html` is memoised per text); the pages'
catalogs, procedure and office names are done at startup.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import budoux
from markupsafe import Markup, escape

log = logging.getLogger(__name__)

JAPANESE_LANGUAGES: Final = ("ja", "ja-easy")
RUBY_LANGUAGES: Final = frozenset({"ja-easy"})
_KANJI: Final = "\u3005\u3006\u30f6\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HAS_KANJI: Final = re.compile(f"[{_KANJI}]")
_KANJI_RUNS: Final = re.compile(f"([{_KANJI}]+)")
_PLACEHOLDER: Final = re.compile(r"\{\w+\}")
# What a placeholder is read as when it stands before a counter word: 5 reads 人 as にん and 分 as ふん.
_PLACEHOLDER_READ_AS: Final = "5"
_KATAKANA_TO_HIRAGANA: Final = {code: code - 0x60 for code in range(0x30A1, 0x30F7)}
READINGS_FILE: Final = Path(__file__).with_name("readings.json")
READINGS_FORMAT: Final = 1
"""Part of ``readings.json``: bump it when the analysis changes, and make the file again."""
ANALYSER_TIMEOUT_S: Final = 120.0
"""The child analysing a city's texts imports Open JTalk and Sudachi (seconds), then a few ms a text."""


@dataclass(frozen=True, slots=True)
class Reading:
    """``text[start:end]`` is read ``kana`` (hiragana)."""

    start: int
    end: int
    kana: str


def hiragana(kana: str) -> str:
    """カタカナ → ひらがな (ー and other marks unchanged)."""
    return kana.translate(_KATAKANA_TO_HIRAGANA)


@functools.cache
def _parser() -> budoux.Parser:
    return budoux.load_default_japanese_parser()


def _split_okurigana(word: str, kana: str, offset: int) -> list[Reading]:
    """Readings of the kanji runs of ``word`` (read ``kana``), its kana left bare: 越し/こし → 越:こ."""
    pattern = "".join("(.+?)" if _HAS_KANJI.match(part) else re.escape(hiragana(part))
                      for part in _KANJI_RUNS.split(word) if part)
    match = re.fullmatch(pattern, kana)
    if match is None:  # the reading doesn't follow the spelling: the whole word gets it
        return [Reading(offset, offset + len(word), kana)]
    readings, groups, position = [], iter(match.groups()), offset
    for part in _KANJI_RUNS.split(word):
        if part and _HAS_KANJI.match(part):
            readings.append(Reading(position, position + len(part), next(groups)))
        position += len(part)
    return readings


Words = tuple[Reading, ...]
"""The readings of one analysed text's kanji words, offsets into that text."""


def overrides_pattern(overrides: Mapping[str, str]) -> re.Pattern[str] | None:
    """A pattern finding the words of ``overrides`` (word → reading), longest first: 暗証番号 before 番号."""
    words = sorted(overrides, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, words))) if words else None


def with_overrides(plain: str, words: Words, overrides: Mapping[str, str], pattern: re.Pattern[str] | None) -> Words:
    """``words`` (Open JTalk's readings of ``plain``) with ``overrides`` put over the words they cover."""
    found: list[Reading] = []
    taken: set[int] = set()
    for match in pattern.finditer(plain) if pattern else ():
        found += _split_okurigana(match.group(0), overrides[match.group(0)], match.start())
        taken.update(range(match.start(), match.end()))
    found += [r for r in words if taken.isdisjoint(range(r.start, r.end))]
    return tuple(sorted(found, key=lambda r: r.start))


class KnownReadings:
    """The texts whose readings are known, each ``_analysable`` text → its :data:`Words`.

    Starts from ``readings.json``; :meth:`add` gets the missing ones from a child process. One per
    process (:func:`known_readings`): every app (each test builds one) shows the same catalogs.
    """

    def __init__(self, shipped: Mapping[str, Words]) -> None:
        self._words: dict[str, Words] = dict(shipped)
        self._lock = threading.Lock()
        self._pending: set[str] = set()

    def get(self, plain: str) -> Words | None:
        """The readings of ``plain`` (an ``_analysable`` text), or None when not analysed yet."""
        return self._words.get(plain) if _HAS_KANJI.search(plain) else ()

    def add(self, plains: Iterable[str]) -> None:
        """Analyse those of ``plains`` not known yet, in one child process; blocks until it is done."""
        missing = sorted({p for p in plains if self.get(p) is None})
        if missing:
            analysed = analyse_in_child(missing)
            with self._lock:
                self._words.update(analysed)

    def add_later(self, plain: str) -> None:
        """Analyse ``plain`` in a background thread (a text first met on a request; the loop goes on)."""
        with self._lock:
            if plain in self._pending:
                return
            self._pending.add(plain)
        log.warning("no readings for %r yet: analysing it now, for the next page", plain)

        def run() -> None:
            try:
                self.add([plain])
            except (OSError, subprocess.SubprocessError, ValueError) as error:
                log.error("analysing the readings of %r failed: %s", plain, error)
            finally:
                with self._lock:
                    self._pending.discard(plain)

        threading.Thread(target=run, name="readings", daemon=True).start()


def load_readings(path: Path = READINGS_FILE) -> dict[str, Words]:
    """The readings in a ``readings.json`` (``{"format", "readings": {text: [[start, end, kana]…]}}``)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != READINGS_FORMAT:
        log.warning("%s has format %s, not %s: every text is analysed again", path, data.get("format"),
                    READINGS_FORMAT)
        return {}
    return {text: tuple(Reading(*r) for r in words) for text, words in data["readings"].items()}


@functools.cache
def known_readings() -> KnownReadings:
    """This process's known readings (see :class:`KnownReadings`)."""
    return KnownReadings(load_readings())


def analyse_in_child(plains: list[str]) -> dict[str, Words]:
    """The readings of ``plains`` from ``python -m queue_server.web.readings --analyse`` (Open JTalk there)."""
    done = subprocess.run([sys.executable, "-m", "queue_server.web.readings", "--analyse"],
                          input=json.dumps(plains, ensure_ascii=False), capture_output=True, text=True,
                          encoding="utf-8", timeout=ANALYSER_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise subprocess.SubprocessError(f"the readings analyser exited with {done.returncode}: "
                                         f"{done.stderr.strip()[-500:]}")
    return {text: tuple(Reading(*r) for r in words) for text, words in json.loads(done.stdout).items()}


class JapaneseText:
    """Phrase-broken (and for やさしい日本語 ruby-annotated) HTML of Japanese texts, each computed once."""

    def __init__(self, readings: Mapping[str, str] | None = None, known: KnownReadings | None = None) -> None:
        """``readings``: the configuration's ``[readings]``, word → reading, over Open JTalk's;
        ``known``: the texts analysed so far (default: this process's, :func:`known_readings`)."""
        self._overrides = {word: hiragana(kana) for word, kana in (readings or {}).items()}
        self._override_pattern = overrides_pattern(self._overrides)
        self._known = known or known_readings()
        self._cache: dict[tuple[str, bool], Markup] = {}

    def prepare(self, texts: Iterable[str]) -> None:
        """Analyse the readings of those of ``texts`` not known yet (in a child process; blocks)."""
        self._known.add(_analysable(text)[0] for text in texts)

    def readings(self, text: str) -> list[Reading] | None:
        """Where ``text``'s kanji are and how they are read (placeholders and overrides respected);
        None when ``text`` has not been analysed (see :meth:`prepare`)."""
        plain, origin, placeholders = _analysable(text)
        words = self._known.get(plain)
        if words is None:
            return None
        found = with_overrides(plain, words, self._overrides, self._override_pattern)
        return [Reading(origin[r.start], origin[r.end - 1] + 1, r.kana) for r in found
                if placeholders.isdisjoint(range(r.start, r.end))]

    def html(self, text: str, *, ruby: bool = False) -> Markup:
        """``text`` escaped, phrases joined by ``<wbr>`` in ``<span class="phrases">``; ruby if asked.

        A text not analysed yet (not prepared at startup) is shown without readings this once
        and analysed in the background.
        """
        key = (text, ruby)
        if (cached := self._cache.get(key)) is None:
            readings = self.readings(text) if ruby else []
            if readings is None:
                self._known.add_later(_analysable(text)[0])
                return self._render(text, [])
            cached = self._cache[key] = self._render(text, readings)
        return cached

    def filled_html(self, template: str, params: Mapping[str, object], *, ruby: bool = False) -> Markup:
        """``template``'s HTML with its ``{placeholders}`` filled in with ``params`` (escaped), as
        ``page.js`` ``tHtml`` does: a filled-in catalog text needs no analysis of its own."""
        html = str(self.html(template, ruby=ruby))
        for name, value in params.items():
            html = html.replace("{" + name + "}", str(escape(value)))
        return Markup(html)

    def _render(self, text: str, readings: list[Reading]) -> Markup:
        inside = {i for r in readings for i in range(r.start + 1, r.end)}  # no break inside a ruby word
        breaks = {b for b in _phrase_breaks(text) if b not in inside}
        starts = {r.start: r for r in readings}
        out: list[str] = []
        i = 0
        while i < len(text):
            if i in breaks:
                out.append("<wbr>")
            if (reading := starts.get(i)) is not None:
                out.append(f"<ruby>{escape(text[i:reading.end])}<rt>{escape(reading.kana)}</rt></ruby>")
                i = reading.end
            else:
                out.append(str(escape(text[i])))
                i += 1
        return Markup(f'<span class="phrases">{"".join(out)}</span>')

    def catalog_html(self, catalog: Mapping[str, str], lang: str) -> dict[str, str]:
        """Every text of a Japanese catalog as HTML (placeholders kept for the page script to fill)."""
        return {key: str(self.html(value, ruby=lang in RUBY_LANGUAGES)) for key, value in catalog.items()}


def _analysable(text: str) -> tuple[str, list[int], set[int]]:
    """``text`` as the analysers see it: placeholders as 5, without the spaces of 分かち書き.

    Open JTalk reads 「{n} 人」 as にん only with a number before it, and 「5 分です」 as わけ with the
    space. Returns the analysed text, ``origin`` (``origin[i]``: the index in ``text`` of its
    character ``i``) and the indexes that stand for placeholders.
    """
    analysed: list[str] = []
    origin: list[int] = []
    placeholders: set[int] = set()
    for match in re.finditer(r"\{\w+\}|[ \u3000]+|.", text, re.DOTALL):
        if _PLACEHOLDER.fullmatch(match.group(0)):
            placeholders.add(len(analysed))
            analysed.append(_PLACEHOLDER_READ_AS)
        elif match.group(0).isspace():
            continue
        else:
            analysed.append(match.group(0))
        origin.append(match.start())
    return "".join(analysed), origin, placeholders


@functools.lru_cache(maxsize=8192)
def _phrase_breaks(text: str) -> frozenset[int]:
    """Offsets in ``text`` where a line may break between two phrases (BudouX); memoised as above."""
    plain, origin, _ = _analysable(text)
    breaks: set[int] = set()
    offset = 0
    for phrase in _parser().parse(plain)[:-1]:
        offset += len(phrase)
        breaks.add(origin[offset])
    return frozenset(breaks)
