"""Speech engines behind one protocol: Open JTalk for Japanese, pyttsx3 (espeak-ng, SAPI) for the rest."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import ModuleType
from typing import Final, Protocol, runtime_checkable

import numpy as np

from queue_server.speech.audio import encode_wav

PYTTSX3_CHILD: Final = Path(__file__).with_name("_pyttsx3_child.py")
PYTTSX3_TIMEOUT_S: Final = 20.0
"""A render normally takes well under a second; past this the child is hung and gets killed."""

# Exit codes of ``_pyttsx3_child.py`` (kept in step with that file).
CHILD_UNAVAILABLE: Final = 3
CHILD_BAD_VOICE: Final = 4


class SpeechError(Exception):
    """Speech could not be produced."""


class EngineUnavailable(SpeechError):
    """The engine, its system library or the configured voice is missing on this machine."""


class SynthesisFailed(SpeechError):
    """The engine ran but gave no usable audio (crash, hang, silence)."""


@runtime_checkable
class SpeechEngine(Protocol):
    """Turns text into speech. ``synthesize`` blocks; the service runs it in a worker thread."""

    @property
    def name(self) -> str:
        """The engine's name as written in the voices configuration."""
        ...

    def synthesize(self, text: str, lang: str) -> bytes:
        """Speak ``text`` (in language ``lang``) and return a WAV file's bytes."""
        ...


class OpenJTalkEngine:
    """Japanese through Open JTalk (pyopenjtalk-plus, dictionary and HTS voice bundled, offline)."""

    def __init__(self, speed: float = 1.0, half_tone: float = 0.0) -> None:
        """``speed`` 1.0 is normal; ``half_tone`` shifts the pitch in semitones."""
        self._speed = speed
        self._half_tone = half_tone
        self._import_lock = threading.Lock()
        self._module: ModuleType | None = None

    @property
    def name(self) -> str:
        """Always ``"openjtalk"``."""
        return "openjtalk"

    def _pyopenjtalk(self) -> ModuleType:
        """Import pyopenjtalk once, on first use, keeping its import-time banner out of stdout."""
        with self._import_lock:
            if self._module is None:
                try:
                    # pyopenjtalk-plus prints an "ONNX Runtime is not installed" notice on import;
                    # the model it mentions only guesses readings of 何, which our phrases lack.
                    with contextlib.redirect_stdout(io.StringIO()):
                        import pyopenjtalk
                except ImportError as error:
                    raise EngineUnavailable(
                        f"Open JTalk is not installed ({error}): pip install pyopenjtalk-plus"
                    ) from error
                self._module = pyopenjtalk
            return self._module

    def synthesize(self, text: str, lang: str) -> bytes:
        """Speak Japanese ``text``; pyopenjtalk serialises use of its voice internally."""
        samples, rate = self._pyopenjtalk().tts(text, speed=self._speed, half_tone=self._half_tone)
        peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
        if peak <= 0.0:
            raise SynthesisFailed(f"Open JTalk produced silence for {text!r}")
        # Its float output is on an int16 scale and can overshoot it: scale, don't clip.
        return encode_wav(samples / max(peak, 32768.0), int(rate))


def install_hint(driver: str | None, platform: str = sys.platform) -> str:
    """What to install so pyttsx3's ``driver`` works on ``platform``."""
    if driver == "sapi5" or (driver is None and platform == "win32"):
        return (
            "install the Windows voice for the language (Settings > Time & language > Speech) and pip install pyttsx3"
        )
    if driver == "nsss" or (driver is None and platform == "darwin"):
        return "pip install pyttsx3 (the macOS voices need pyobjc)"
    return "install espeak-ng (Debian/Ubuntu: apt-get install espeak-ng) and pip install pyttsx3"


class Pyttsx3Engine:
    """Any pyttsx3 voice: espeak-ng on Linux, SAPI 5 on Windows, NSSpeechSynthesizer on macOS.

    Each render runs in a fresh child process: pyttsx3 keeps one engine per process and is not
    thread-safe, espeak-ng can be initialised only once per process, and a driver that hangs or
    crashes must not take the server with it. The child costs about 0.1 s (see
    ``benchmarks/speech_render.md``), hidden behind the chime the display plays first.
    """

    def __init__(
        self,
        voice: str | None = None,
        rate: int | None = None,
        volume: float | None = None,
        driver: str | None = None,
        timeout_s: float = PYTTSX3_TIMEOUT_S,
    ) -> None:
        """``voice``: a voice id, name or language tag (else one for the language); None: the default."""
        self._request = {"voice": voice, "rate": rate, "volume": volume, "driver": driver}
        self._driver = driver
        self._timeout_s = timeout_s

    @property
    def name(self) -> str:
        """Always ``"pyttsx3"``."""
        return "pyttsx3"

    def synthesize(self, text: str, lang: str) -> bytes:
        """Render ``text`` in a child process and return its WAV."""
        with tempfile.TemporaryDirectory(prefix="madoguchi-tts-") as folder:
            out = Path(folder) / "speech.wav"
            request = json.dumps({**self._request, "text": text, "lang": lang, "out": str(out)})
            try:
                done = subprocess.run(
                    # -P: don't put this package's folder on the child's sys.path, where its
                    # module names could shadow the ones pyttsx3 imports.
                    [sys.executable, "-P", str(PYTTSX3_CHILD)],
                    input=request.encode("utf-8"),
                    capture_output=True,
                    timeout=self._timeout_s,
                    creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
                    check=False,
                )
            except subprocess.TimeoutExpired as error:
                raise SynthesisFailed(
                    f"pyttsx3 did not finish {text!r} within {self._timeout_s:g} s; the child was killed"
                ) from error
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            detail = message[-1] if message else f"exit code {done.returncode}"
            if done.returncode == CHILD_UNAVAILABLE:
                raise EngineUnavailable(
                    f"pyttsx3 driver {self._driver or 'default'!r} cannot start ({detail}); "
                    f"{install_hint(self._driver)}"
                )
            if done.returncode == CHILD_BAD_VOICE:
                raise EngineUnavailable(f"pyttsx3: {detail}")
            if done.returncode != 0:
                raise SynthesisFailed(f"pyttsx3 failed on {text!r}: {detail}")
            try:
                data = out.read_bytes()
            except FileNotFoundError as error:
                raise SynthesisFailed(f"pyttsx3 wrote no audio for {text!r}") from error
        if len(data) <= 44:
            raise SynthesisFailed(f"pyttsx3 wrote an empty WAV for {text!r}")
        return data
