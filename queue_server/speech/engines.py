"""Speech engines behind one protocol: Open JTalk for Japanese, pyttsx3 (espeak-ng, SAPI) for the rest."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import multiprocessing
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
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


OPEN_JTALK_IDLE_S: Final = 600.0
"""The Open JTalk worker process exits after this long without a render (a quiet lobby, the night)."""
OPEN_JTALK_TIMEOUT_S: Final = 60.0
"""A render takes well under a second and the worker's start a few; past this it is hung."""


@functools.cache
def _pyopenjtalk() -> ModuleType:
    """Import pyopenjtalk once per process, keeping its import-time banner out of stdout."""
    try:
        # pyopenjtalk-plus prints an "ONNX Runtime is not installed" notice on import;
        # the model it mentions only guesses readings of 何, which our phrases lack.
        with contextlib.redirect_stdout(io.StringIO()):
            import pyopenjtalk
    except ImportError as error:
        raise EngineUnavailable(f"Open JTalk is not installed ({error}): pip install pyopenjtalk-plus") from error
    return pyopenjtalk


def _init_open_jtalk_worker() -> None:
    """The worker's start: it ends with the server, however the server ends (as the estimates worker)."""
    from queue_server.child_process import exit_with_server

    exit_with_server()


def _open_jtalk_tts(text: str, speed: float, half_tone: float) -> tuple[np.ndarray, int]:
    """Open JTalk's samples and rate for ``text`` (runs in the worker process)."""
    samples, rate = _pyopenjtalk().tts(text, speed=speed, half_tone=half_tone)
    return samples, int(rate)


class OpenJTalkEngine:
    """Japanese through Open JTalk (pyopenjtalk-plus, dictionary and HTS voice bundled, offline).

    It renders in a worker process of its own, started on the first render: Open JTalk's and
    Sudachi's dictionaries (about 140 MB) then never weigh on the server process, and the worker
    exits after :data:`OPEN_JTALK_IDLE_S` without a render, to start again on the next.
    """

    def __init__(self, speed: float = 1.0, half_tone: float = 0.0, idle_s: float = OPEN_JTALK_IDLE_S) -> None:
        """``speed`` 1.0 is normal; ``half_tone`` shifts the pitch in semitones."""
        self._speed = speed
        self._half_tone = half_tone
        self._idle_s = idle_s
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._idle: threading.Timer | None = None

    @property
    def name(self) -> str:
        """Always ``"openjtalk"``."""
        return "openjtalk"

    def _worker(self) -> ProcessPoolExecutor:
        """The worker process, started if it is not running; the idle timer stopped meanwhile."""
        with self._lock:
            if self._idle is not None:
                self._idle.cancel()
                self._idle = None
            if self._pool is None:
                method = "spawn" if sys.platform == "win32" else "forkserver"
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context(method),
                                                 initializer=_init_open_jtalk_worker)
            return self._pool

    def _rest(self, pool: ProcessPoolExecutor) -> None:
        """After a render: stop ``pool`` once it has been idle for ``idle_s``."""
        with self._lock:
            if self._pool is pool and self._idle is None:
                self._idle = threading.Timer(self._idle_s, self._stop_if_idle, args=(pool,))
                self._idle.daemon = True
                self._idle.start()

    def _stop_if_idle(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is not pool or self._idle is None:
                return  # a render came meanwhile
            self._pool, self._idle = None, None
        pool.shutdown(wait=False)

    def synthesize(self, text: str, lang: str) -> bytes:
        """Speak Japanese ``text`` in the worker process (one render at a time there)."""
        pool = self._worker()
        try:
            samples, rate = pool.submit(_open_jtalk_tts, text, self._speed, self._half_tone).result(
                timeout=OPEN_JTALK_TIMEOUT_S)
        except (BrokenProcessPool, TimeoutError) as error:
            self.close()  # a new worker for the next render
            raise SynthesisFailed(f"the Open JTalk worker failed on {text!r}: {error or 'timed out'}") from error
        finally:
            self._rest(pool)
        peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
        if peak <= 0.0:
            raise SynthesisFailed(f"Open JTalk produced silence for {text!r}")
        # Its float output is on an int16 scale and can overshoot it: scale, don't clip.
        return encode_wav(samples / max(peak, 32768.0), rate)

    def close(self) -> None:
        """Stop the worker process (a render after this starts a new one)."""
        with self._lock:
            pool, self._pool = self._pool, None
            if self._idle is not None:
                self._idle.cancel()
                self._idle = None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


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
