"""Offline speech for call announcements: phrases rendered on the server to cached WAV clips.

Japanese is spoken by Open JTalk, other languages by pyttsx3 (espeak-ng on Linux, SAPI on
Windows), per the voices configuration. The web layer creates one ``SpeechService`` and serves
the clips it returns; the display plays ``chime.wav`` and then those clips.
"""

from queue_server.speech.config import DEFAULT_VOICES, SpeechConfigError, Voice
from queue_server.speech.engines import (
    EngineUnavailable,
    OpenJTalkEngine,
    Pyttsx3Engine,
    SpeechEngine,
    SpeechError,
    SynthesisFailed,
)
from queue_server.speech.phrases import PhraseCatalog, PhraseError
from queue_server.speech.service import Clip, SpeechService, UnknownLanguage

__all__ = [
    "DEFAULT_VOICES",
    "Clip",
    "EngineUnavailable",
    "OpenJTalkEngine",
    "PhraseCatalog",
    "PhraseError",
    "Pyttsx3Engine",
    "SpeechConfigError",
    "SpeechEngine",
    "SpeechError",
    "SpeechService",
    "SynthesisFailed",
    "UnknownLanguage",
    "Voice",
]
