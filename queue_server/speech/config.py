"""Which engine and voice speaks each language: a plain mapping, checked with readable errors.

In the server's TOML config a language's table replaces its default whole (so switching
``en`` to another engine doesn't inherit options the new engine doesn't know)::

    [speech.voices.en]
    engine = "pyttsx3"      # "openjtalk" | "pyttsx3"
    voice = "en-us"         # pyttsx3: voice id, name or language tag (SAPI: e.g. "en-US", "Zira");
                            # if none matches, a voice tagged with the language (en → en-US) is used
    rate = 150              # pyttsx3: words per minute
    # volume = 1.0          # pyttsx3: 0.0–1.0
    # driver = "sapi5"      # pyttsx3: "espeak" | "sapi5" | "nsss"; default: the platform's own

    [speech.voices.ja]
    engine = "openjtalk"
    speed = 1.0             # openjtalk: 0.5–2.0
    half_tone = 0.0         # openjtalk: pitch shift in semitones, -12–12
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from queue_server.speech.engines import OpenJTalkEngine, Pyttsx3Engine, SpeechEngine

VoiceOptions = Mapping[str, object]


def _frozen(options: dict[str, object]) -> VoiceOptions:
    """A read-only view, so the defaults can't be changed by whoever reads them."""
    return MappingProxyType(options)


DEFAULT_VOICES: Final[Mapping[str, VoiceOptions]] = MappingProxyType(
    {
        "ja": _frozen({"engine": "openjtalk"}),
        # Slower for やさしい日本語: it is meant for listeners still learning Japanese.
        "ja-easy": _frozen({"engine": "openjtalk", "speed": 0.85}),
        # 150 wpm rather than espeak's 200: announcements must be understood across a noisy lobby.
        "en": _frozen({"engine": "pyttsx3", "voice": "en-us", "rate": 150}),
        # Debian's espeak-ng reads hanzi right only with the "latin as Pinyin" Mandarin voice.
        "zh": _frozen({"engine": "pyttsx3", "voice": "cmn-latn-pinyin", "rate": 150}),
        "ko": _frozen({"engine": "pyttsx3", "voice": "ko", "rate": 150}),
        # Brazilian Portuguese: Brazilians are by far the largest Portuguese-speaking group in Japan.
        "pt": _frozen({"engine": "pyttsx3", "voice": "pt-br", "rate": 150}),
        "vi": _frozen({"engine": "pyttsx3", "voice": "vi", "rate": 150}),
    }
)


class SpeechConfigError(ValueError):
    """The voices configuration names an unknown engine or a bad option."""


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One engine option: its type and, for numbers, the allowed range."""

    kind: type
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """An engine the configuration may name: how to build it and which options it takes."""

    build: Callable[..., SpeechEngine]
    options: Mapping[str, OptionSpec]


ENGINES: Final[Mapping[str, EngineSpec]] = MappingProxyType(
    {
        "openjtalk": EngineSpec(
            OpenJTalkEngine,
            MappingProxyType({"speed": OptionSpec(float, 0.5, 2.0), "half_tone": OptionSpec(float, -12.0, 12.0)}),
        ),
        "pyttsx3": EngineSpec(
            Pyttsx3Engine,
            MappingProxyType(
                {
                    "voice": OptionSpec(str),
                    "rate": OptionSpec(int, 50, 400),
                    "volume": OptionSpec(float, 0.0, 1.0),
                    "driver": OptionSpec(str, choices=("espeak", "sapi5", "nsss")),
                }
            ),
        ),
    }
)


@dataclass(frozen=True, slots=True)
class Voice:
    """A language's engine and options; ``identity`` is what the speech cache key depends on."""

    lang: str
    engine: str
    options: VoiceOptions

    @property
    def identity(self) -> str:
        """Engine and options as canonical JSON: the same voice always gives the same string."""
        return json.dumps({"engine": self.engine, "options": dict(self.options)}, sort_keys=True, ensure_ascii=False)

    def build(self) -> SpeechEngine:
        """A new engine instance speaking with this voice."""
        return ENGINES[self.engine].build(**self.options)


def parse_voices(config: Mapping[str, object] | None, source: str = "speech.voices") -> dict[str, Voice]:
    """DEFAULT_VOICES overlaid with ``config`` (lang → {engine, options…}), every entry checked."""
    merged: dict[str, object] = {**DEFAULT_VOICES, **(config or {})}
    return {lang: _parse_voice(lang, entry, f"{source}.{lang}") for lang, entry in merged.items()}


def _parse_voice(lang: str, entry: object, where: str) -> Voice:
    """One language's entry to a Voice, or SpeechConfigError naming the key and what is allowed."""
    if not isinstance(entry, Mapping):
        raise SpeechConfigError(f'{where} must be a table like {{engine = "pyttsx3", voice = "en-us"}}')
    engine = entry.get("engine")
    if engine not in ENGINES:
        raise SpeechConfigError(f"{where}.engine = {engine!r}: allowed engines are {', '.join(ENGINES)}")
    spec = ENGINES[str(engine)]
    options: dict[str, object] = {}
    for key, value in entry.items():
        if key == "engine":
            continue
        option = spec.options.get(key)
        if option is None:
            allowed = ", ".join(spec.options) or "none"
            raise SpeechConfigError(f"{where}.{key}: not an option of engine {engine!r}; allowed: {allowed}")
        options[key] = _check_option(value, option, f"{where}.{key}")
    return Voice(lang, str(engine), MappingProxyType(options))


def _check_option(value: object, option: OptionSpec, where: str) -> object:
    """``value`` converted to the option's type, or SpeechConfigError saying what is allowed."""
    if option.kind is str:
        if not isinstance(value, str) or not value:
            raise SpeechConfigError(f"{where} = {value!r}: must be a non-empty string")
        if option.choices and value not in option.choices:
            raise SpeechConfigError(f"{where} = {value!r}: allowed: {', '.join(option.choices)}")
        return value
    # bool is an int in Python, but `rate = true` is surely a mistake.
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (option.kind is int and not isinstance(value, int))
    ):
        raise SpeechConfigError(f"{where} = {value!r}: must be a{'n integer' if option.kind is int else ' number'}")
    if option.low is not None and option.high is not None and not option.low <= value <= option.high:
        raise SpeechConfigError(f"{where} = {value!r}: must be between {option.low:g} and {option.high:g}")
    return option.kind(value)
