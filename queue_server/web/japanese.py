"""Visitor-facing Japanese as HTML: lines broken between phrases, readings (ruby) for やさしい日本語.

Browsers break Japanese between any two characters, so a narrow kiosk button or phone wraps
「くださ／い」 or 「状況／を」. :meth:`JapaneseText.html` splits a text into phrases with BudouX
(Google's phrase segmenter, made for exactly this) and joins them with ``<wbr>`` inside a
``<span class="phrases">``, which ``common.css`` sets to ``word-break: keep-all; overflow-wrap:
anywhere``: lines break only between phrases, and a phrase wider than the line still wraps.

With ``ruby=True`` (やさしい日本語 pages) every kanji word gets its reading,
``<ruby>窓口<rt>まどぐち</rt></ruby>``, from Open JTalk (pyopenjtalk, already used for the voice),
with okurigana outside the ruby (``<ruby>越<rt>こ</rt></ruby>し``). The configuration's
``[readings]`` table (word → kana) overrides Open JTalk where it reads a word wrongly.

Catalog texts keep their ``{placeholders}`` as they are (the page script fills them, escaping the
values); a number in front of a counter word is read as 5 would be (5 人 → にん, 5 分 → ふん).
Every text is analysed once and kept (:meth:`JapaneseText.html` is memoised per text); the pages'
catalogs, procedure and office names are done at startup, so no request waits for Open JTalk.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import budoux
from markupsafe import Markup, escape

JAPANESE_LANGUAGES: Final = ("ja", "ja-easy")
RUBY_LANGUAGES: Final = frozenset({"ja-easy"})
_KANJI: Final = "\u3005\u3006\u30f6\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HAS_KANJI: Final = re.compile(f"[{_KANJI}]")
_KANJI_RUNS: Final = re.compile(f"([{_KANJI}]+)")
_PLACEHOLDER: Final = re.compile(r"\{\w+\}")
# What a placeholder is read as when it stands before a counter word: 5 reads 人 as にん and 分 as ふん.
_PLACEHOLDER_READ_AS: Final = "5"
_KATAKANA_TO_HIRAGANA: Final = {code: code - 0x60 for code in range(0x30A1, 0x30F7)}


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
def _pyopenjtalk() -> Any:
    """Open JTalk, imported once with its import-time notice kept out of the server's output."""
    with contextlib.redirect_stdout(io.StringIO()):
        import pyopenjtalk
    return pyopenjtalk


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


def _open_jtalk_readings(text: str, offset: int) -> list[Reading]:
    """Readings of the kanji words of ``text`` as Open JTalk reads them, at ``offset`` onwards."""
    return [Reading(r.start + offset, r.end + offset, r.kana) for r in _open_jtalk_words(text)]


# Memoised per text for the process: the analysis is pure, and every app (each test builds one)
# shows the same catalogs; a few thousand texts at most.
@functools.lru_cache(maxsize=8192)
def _open_jtalk_words(text: str) -> tuple[Reading, ...]:
    """Readings of the kanji words of ``text`` as Open JTalk reads them, found back in ``text``.

    Open JTalk normalises its input (3 → 三, ・ → 、), so each kanji word it returns is searched
    for in the original from where the previous one ended; one not found there is skipped.
    """
    if not _HAS_KANJI.search(text):
        return ()
    readings: list[Reading] = []
    position = 0
    for feature in _pyopenjtalk().run_frontend(text):
        word, kana = feature["string"], hiragana(feature["read"])
        if not _HAS_KANJI.search(word) or not re.fullmatch("[\u3041-\u309fー]+", kana):
            continue
        found = text.find(word, position)
        if found < 0:
            continue
        readings.extend(_split_okurigana(word, kana, found))
        position = found + len(word)
    return tuple(readings)


class JapaneseText:
    """Phrase-broken (and for やさしい日本語 ruby-annotated) HTML of Japanese texts, each computed once."""

    def __init__(self, readings: Mapping[str, str] | None = None) -> None:
        """``readings``: the configuration's ``[readings]``, word → reading, over Open JTalk's."""
        self._overrides = {word: hiragana(kana) for word, kana in (readings or {}).items()}
        # Longest first, so 暗証番号 wins over 番号.
        words = sorted(self._overrides, key=len, reverse=True)
        self._override_pattern = re.compile("|".join(map(re.escape, words))) if words else None
        self._cache: dict[tuple[str, bool], Markup] = {}

    def readings(self, text: str) -> list[Reading]:
        """Where ``text``'s kanji are and how they are read (placeholders and overrides respected)."""
        plain, origin, placeholders = _analysable(text)
        found: list[Reading] = []
        position = 0
        for match in self._override_pattern.finditer(plain) if self._override_pattern else ():
            found += _open_jtalk_readings(plain[position:match.start()], position)
            found += _split_okurigana(match.group(0), self._overrides[match.group(0)], match.start())
            position = match.end()
        found += _open_jtalk_readings(plain[position:], position)
        return [Reading(origin[r.start], origin[r.end - 1] + 1, r.kana) for r in found
                if placeholders.isdisjoint(range(r.start, r.end))]

    def html(self, text: str, *, ruby: bool = False) -> Markup:
        """``text`` escaped, phrases joined by ``<wbr>`` in ``<span class="phrases">``; ruby if asked."""
        key = (text, ruby)
        if (cached := self._cache.get(key)) is None:
            cached = self._cache[key] = self._render(text, ruby)
        return cached

    def _render(self, text: str, ruby: bool) -> Markup:
        readings = self.readings(text) if ruby else []
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
