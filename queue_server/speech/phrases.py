"""The call phrases of ``phrases.toml``: which words each language speaks when tickets are called.

One call is one sentence (``call``). Calls that waited behind each other on the display are spoken
together (``group_text``): several numbers to one counter in one sentence (``calls``), several
counters in one sentence where the language has the form (``spread``: 「101 番のかたは 3 番、205 番の
かたは 5 番窓口へ」), else one sentence per counter; recalls after the first calls, saying they are
called again (``spread_recall`` inside that sentence, else a sentence of their own, ``recall``).
"""

from __future__ import annotations

import re
import string
import tomllib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final

from ..korean import resolve_particles

CATALOG_PATH: Final = Path(__file__).with_name("phrases.toml")
JAPANESE: Final = "ja"
"""Every call is announced in Japanese first, whatever the visitor's language."""

TICKET_NUMBER: Final = re.compile(r"([A-Z]*)[-\s]?([0-9]+)")
_FIELDS: Final = {"call": {"number", "counter"}, "counter": {"counter_no"}, "number": {"letters", "digits"},
                  "calls": {"numbers", "counter"}, "listed": {"number"}, "comma": set(), "last": set(),
                  "recall": {"call"}}
_SPREAD_FIELDS: Final = {"spread": {"parts"}, "spread_part": {"numbers", "counter"}, "spread_counter": {"counter_no"},
                         "spread_recall": {"parts"}}
"""Optional, all four or none: several counters in one sentence. Without them each counter gets its own."""
_KEEP_SPACES: Final = frozenset({"comma", "last"})
"""Joiners are used as written (" and "); every other template is stripped."""


class PhraseError(ValueError):
    """The catalog is malformed, or a call's number or counter can't be spoken."""


@dataclass(frozen=True, slots=True)
class Called:
    """One call of a grouped announcement: the ticket, its counter (as named and numbered), a recall or not,
    and the visitor's language."""

    number: str
    counter_name: str
    counter_no: str
    recall: bool = False
    lang: str = JAPANESE


@dataclass(frozen=True, slots=True)
class Phrases:
    """One language's call phrase templates (see the comments in ``phrases.toml``)."""

    call: str
    counter: str
    number: str
    calls: str
    listed: str
    comma: str
    last: str
    recall: str
    letters: tuple[str, ...] | None = None
    spread: str | None = None
    spread_part: str | None = None
    spread_counter: str | None = None
    spread_recall: str | None = None

    def say_number(self, number: str) -> str:
        """A ticket number ("A012", "123") as this language's engine should read it."""
        match = TICKET_NUMBER.fullmatch(unicodedata.normalize("NFKC", number).strip().upper())
        if match is None:
            raise PhraseError(
                f"ticket number {number!r} can't be announced: expected digits with an optional "
                "latin-letter prefix, e.g. 123 or A012"
            )
        prefix, digits = match.groups()
        letters = " ".join(self.letters[ord(c) - ord("A")] for c in prefix) if self.letters else prefix
        # str(int()) drops the leading zeros that only pad the printed ticket.
        return self.number.format(letters=letters, digits=str(int(digits))).strip()

    def say_counter(self, counter_name: str, counter_no: str) -> str:
        """The counter as spoken: "3 番窓口" from its number, else its name as written."""
        number = unicodedata.normalize("NFKC", counter_no).strip()
        if number.isdecimal():
            return self.counter.format(counter_no=str(int(number)))
        if counter_name.strip():
            return counter_name.strip()
        raise PhraseError(f"counter has neither a number ({counter_no!r}) nor a name to announce")

    def call_text(self, number: str, counter_name: str, counter_no: str) -> str:
        """The full announcement for a ticket called to a counter.

        A Korean particle written in two forms (``(으)로``) takes the one the counter as spoken needs.
        """
        text = self.call.format(number=self.say_number(number), counter=self.say_counter(counter_name, counter_no))
        return resolve_particles(text)

    def group_text(self, calls: Sequence[Called]) -> str:
        """The announcement of several calls spoken together: first calls, then recalls.

        Numbers keep the order given (the order they were called); each counter is named once, after
        its numbers. With ``spread``, first calls and recalls share one sentence, the recalls after
        ``spread_recall`` (「…5 番、もう一度、101 番のかたは 1 番窓口へ」): a second sentence would cost
        about 3 s more than the marker. A group of one call is that call's own sentence
        (``call_text``), or ``recall`` around it, so a call spoken alone sounds the same whether it
        came alone or not. Each number must appear once (the caller keeps a number's newest call).
        """
        if not calls:
            raise PhraseError("an announcement needs at least one call")
        first = [call for call in calls if not call.recall]
        again = [call for call in calls if call.recall]
        if first and again and self._spreads:
            return resolve_particles(self._spread(first, again))
        sentences = [self._sentence(first)] if first else []
        if again:
            sentences.append(self.recall.format(call=self._sentence(again)))
        return resolve_particles(" ".join(sentences))

    @property
    def _spreads(self) -> bool:
        """Whether this language says several counters in one sentence."""
        return None not in (self.spread, self.spread_part, self.spread_counter, self.spread_recall)

    def _sentence(self, calls: Sequence[Called]) -> str:
        """One sentence calling ``calls`` (or one per counter, when the language can't spread them)."""
        counters = _by_counter(calls)
        if len(counters) == 1:
            [((name, no), numbers)] = counters.items()
            if len(numbers) == 1:
                return self.call.format(number=self.say_number(numbers[0]), counter=self.say_counter(name, no))
            return self.calls.format(numbers=self._list(numbers), counter=self.say_counter(name, no))
        if not self._spreads:
            return " ".join(self._sentence([call for call in calls if (call.counter_name, call.counter_no) == key])
                            for key in counters)
        return self._spread(calls, [])

    def _spread(self, first: Sequence[Called], again: Sequence[Called]) -> str:
        """Several counters in one sentence: 「101 番のかたは 3 番、205 番のかたは 5 番窓口へ」, recalls last."""
        assert self.spread and self.spread_part and self.spread_counter and self.spread_recall  # see _spreads
        groups = [*_by_counter(first).items(), *_by_counter(again).items()]
        # 「3 番、5 番窓口へ」: the short form only when the last counter, said in full, names them all.
        short = all(unicodedata.normalize("NFKC", no).strip().isdecimal() for (_, no), _ in groups)
        parts = []
        for index, ((name, no), numbers) in enumerate(groups):
            if short and index < len(groups) - 1:
                counter = self.spread_counter.format(counter_no=str(int(unicodedata.normalize("NFKC", no))))
            else:
                counter = self.say_counter(name, no)
            parts.append(self.spread_part.format(numbers=self._list(numbers), counter=counter))
        fresh = len(groups) - len(_by_counter(again))
        if fresh < len(groups):
            parts[fresh:] = [self.spread_recall.format(parts=self.comma.join(parts[fresh:]))]
        return self.spread.format(parts=self.comma.join(parts))

    def _list(self, numbers: Sequence[str]) -> str:
        """Ticket numbers as a spoken list: 「101 番、102 番」, "101 and 102"."""
        said = [self.listed.format(number=self.say_number(number)) for number in numbers]
        return said[0] if len(said) == 1 else self.comma.join(said[:-1]) + self.last + said[-1]


@dataclass(frozen=True, slots=True)
class PhraseCatalog:
    """All languages' phrases, read once from a TOML file."""

    languages: Mapping[str, Phrases]
    source: str

    @classmethod
    def load(cls, path: Path = CATALOG_PATH) -> PhraseCatalog:
        """Read and check a catalog; errors name the file, the key and what is allowed."""
        with path.open("rb") as file:
            raw = tomllib.load(file)
        languages = {lang: _parse(table, f"{path}: [{lang}]") for lang, table in raw.items()}
        if JAPANESE not in languages:
            raise PhraseError(f"{path}: the [{JAPANESE}] table is required: every call is announced in Japanese")
        return cls(MappingProxyType(languages), str(path))

    def phrases(self, lang: str) -> Phrases:
        """The phrases of ``lang``; PhraseError lists the languages there are."""
        try:
            return self.languages[lang]
        except KeyError:
            raise PhraseError(
                f"no call phrases for language {lang!r} in {self.source}; have: {', '.join(self.languages)}"
            ) from None

    def announcement_texts(self, number: str, counter_name: str, counter_no: str, lang: str) -> list[tuple[str, str]]:
        """(language, text) to speak for one call: Japanese, then the visitor's language if another."""
        langs = [JAPANESE] if lang == JAPANESE else [JAPANESE, lang]
        return [(code, self.phrases(code).call_text(number, counter_name, counter_no)) for code in langs]

    def group_texts(self, calls: Sequence[Called]) -> list[tuple[str, str, tuple[str, ...]]]:
        """(language, text, numbers) to speak for calls spoken together.

        Japanese first, with every number; then each other language among the visitors', in the
        order of its first call, with its own visitors' numbers only. A language without phrases is
        left out (its visitors hear the Japanese). Raises PhraseError when a number or counter can't
        be spoken at all.
        """
        texts = [(JAPANESE, self.phrases(JAPANESE).group_text(calls), tuple(call.number for call in calls))]
        for lang in dict.fromkeys(call.lang for call in calls if call.lang != JAPANESE):
            own = [call for call in calls if call.lang == lang]
            phrases = self.languages.get(lang)
            if phrases is not None:
                texts.append((lang, phrases.group_text(own), tuple(call.number for call in own)))
        return texts


def _by_counter(calls: Sequence[Called]) -> dict[tuple[str, str], list[str]]:
    """Numbers per counter (name, number), counters in the order of their first call."""
    counters: dict[tuple[str, str], list[str]] = {}
    for call in calls:
        counters.setdefault((call.counter_name, call.counter_no), []).append(call.number)
    return counters


def _parse(table: object, where: str) -> Phrases:
    """One language table to Phrases, checking each template's placeholders."""
    if not isinstance(table, dict):
        raise PhraseError(f"{where} must be a table with keys {', '.join(_FIELDS)}")
    unknown = set(table) - {*_FIELDS, *_SPREAD_FIELDS, "letters"}
    if unknown:
        raise PhraseError(f"{where}: unknown keys {sorted(unknown)}; allowed: "
                          f"{', '.join([*_FIELDS, *_SPREAD_FIELDS, 'letters'])}")
    spread = [key for key in _SPREAD_FIELDS if key in table]
    if spread and len(spread) < len(_SPREAD_FIELDS):
        raise PhraseError(f"{where}: {', '.join(_SPREAD_FIELDS)} go together; missing "
                          f"{', '.join(key for key in _SPREAD_FIELDS if key not in table)}")
    templates: dict[str, str] = {}
    for key, allowed in [*_FIELDS.items(), *((key, _SPREAD_FIELDS[key]) for key in spread)]:
        value = table.get(key)
        if not isinstance(value, str) or not value.strip():
            raise PhraseError(f"{where}.{key} is required and must be a non-empty string")
        used = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        if used - allowed:
            raise PhraseError(
                f"{where}.{key}: unknown placeholders {sorted(used - allowed)}; allowed: {sorted(allowed)}"
            )
        templates[key] = value if key in _KEEP_SPACES else value.strip()
    letters = table.get("letters")
    spelled: tuple[str, ...] | None = None
    if letters is not None:
        spelled = tuple(str(letters).split())
        if len(spelled) != 26:
            raise PhraseError(f"{where}.letters must name the 26 letters A…Z separated by spaces, has {len(spelled)}")
    return Phrases(**templates, letters=spelled)
