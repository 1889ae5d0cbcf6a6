"""The call phrases of ``phrases.toml``: which words each language speaks when a ticket is called."""

from __future__ import annotations

import re
import string
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final

from ..korean import resolve_particles

CATALOG_PATH: Final = Path(__file__).with_name("phrases.toml")
JAPANESE: Final = "ja"
"""Every call is announced in Japanese first, whatever the visitor's language."""

TICKET_NUMBER: Final = re.compile(r"([A-Z]*)[-\s]?([0-9]+)")
_FIELDS: Final = {"call": {"number", "counter"}, "counter": {"counter_no"}, "number": {"letters", "digits"}}


class PhraseError(ValueError):
    """The catalog is malformed, or a call's number or counter can't be spoken."""


@dataclass(frozen=True, slots=True)
class Phrases:
    """One language's call phrase templates (see the comments in ``phrases.toml``)."""

    call: str
    counter: str
    number: str
    letters: tuple[str, ...] | None = None

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


def _parse(table: object, where: str) -> Phrases:
    """One language table to Phrases, checking each template's placeholders."""
    if not isinstance(table, dict):
        raise PhraseError(f"{where} must be a table with keys call, counter, number")
    unknown = set(table) - {*_FIELDS, "letters"}
    if unknown:
        raise PhraseError(f"{where}: unknown keys {sorted(unknown)}; allowed: call, counter, number, letters")
    templates: dict[str, str] = {}
    for key, allowed in _FIELDS.items():
        value = table.get(key)
        if not isinstance(value, str) or not value.strip():
            raise PhraseError(f"{where}.{key} is required and must be a non-empty string")
        used = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        if used - allowed:
            raise PhraseError(
                f"{where}.{key}: unknown placeholders {sorted(used - allowed)}; allowed: {sorted(allowed)}"
            )
        templates[key] = value
    letters = table.get("letters")
    spelled: tuple[str, ...] | None = None
    if letters is not None:
        spelled = tuple(str(letters).split())
        if len(spelled) != 26:
            raise PhraseError(f"{where}.letters must name the 26 letters A…Z separated by spaces, has {len(spelled)}")
    return Phrases(templates["call"], templates["counter"], templates["number"], spelled)
