"""The call chime: three soft, rising bell tones (F5–A5–C6), generated with numpy.

Run ``python -m queue_server.speech.chime display/static/chime.wav`` to rewrite the copy the
display serves; a test checks that copy still matches ``chime_wav()``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

import numpy as np

from queue_server.speech.audio import OUTPUT_RATE, Samples, encode_wav, normalise_peak

NOTES_HZ: Final = (698.46, 880.00, 1046.50)
"""A rising F-major triad: bright enough to cut through lobby noise, never alarming."""

NOTE_SPACING_S: Final = 0.32
RING_S: Final = 1.1
"""Each note rings on under the next, like a vibraphone, so the chime sounds like one gesture."""

DECAY_PER_S: Final = 4.0
ATTACK_S: Final = 0.006
"""A few milliseconds of attack: instant to the ear, but no click."""

PARTIALS: Final = ((1.0, 1.0), (2.0, 0.28), (3.0, 0.08), (4.07, 0.05))
"""(frequency ratio, amplitude): a sine alone sounds like a test tone; weak overtones make a bell."""

PEAK_DBFS: Final = -3.0
"""A little under the speech peak, so the chime announces the voice rather than startling."""


def _note(frequency: float, rate: int) -> Samples:
    """One struck bell tone with exponential decay; higher partials die away faster."""
    t = np.arange(round(RING_S * rate)) / rate
    attack = np.minimum(1.0, t / ATTACK_S)
    tone = np.zeros_like(t)
    for ratio, amplitude in PARTIALS:
        tone += amplitude * np.sin(2 * np.pi * frequency * ratio * t) * np.exp(-DECAY_PER_S * ratio * t)
    return tone * attack


def chime_samples(rate: int = OUTPUT_RATE) -> Samples:
    """The chime as floats in [-1, 1]."""
    length = round((NOTE_SPACING_S * (len(NOTES_HZ) - 1) + RING_S) * rate)
    out = np.zeros(length)
    for index, frequency in enumerate(NOTES_HZ):
        start = round(index * NOTE_SPACING_S * rate)
        note = _note(frequency, rate)
        out[start : start + len(note)] += note
    fade = round(0.05 * rate)  # the last note is still faintly ringing: fade it out, no cut
    out[-fade:] *= np.linspace(1.0, 0.0, fade)
    return normalise_peak(out, PEAK_DBFS)


def chime_wav(rate: int = OUTPUT_RATE) -> bytes:
    """The chime as mono 16-bit WAV bytes."""
    return encode_wav(chime_samples(rate), rate)


def main(argv: list[str]) -> int:
    """Write the chime to the path given on the command line."""
    if len(argv) != 1:
        print("usage: python -m queue_server.speech.chime OUTPUT.wav", file=sys.stderr)
        return 2
    Path(argv[0]).write_bytes(chime_wav())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
