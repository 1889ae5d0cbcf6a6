"""WAV in and out with numpy and the stdlib: decode, resample, trim, peak-normalise, encode.

Every clip the display plays (speech and chime) leaves here as mono 16-bit PCM at
``OUTPUT_RATE``, so the display never has to cope with engine-specific formats.
"""

from __future__ import annotations

import io
import struct
import wave
from typing import Final

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float64]

OUTPUT_RATE: Final = 24_000
"""Hz. Speech carries nothing useful above 12 kHz, and half of Open JTalk's 48 kHz halves the files."""

PEAK_DBFS: Final = -1.0
"""Peak level of every finished clip; 1 dB of headroom avoids inter-sample clipping in cheap DACs."""

SILENCE_BELOW_PEAK_DB: Final = 40.0
"""A 10 ms frame quieter than the loudest frame by this much counts as silence when trimming."""

SILENCE_FLOOR: Final = 1e-4
"""Absolute frame RMS (full scale 1.0) below which a clip is silence whatever its peak."""

LEAD_IN_S: Final = 0.03
TAIL_S: Final = 0.12
"""Kept around the voiced part: a little lead-in so plosives aren't cut, a longer tail for decay."""

FADE_S: Final = 0.005
"""Fade at both ends so a trimmed clip starts and stops without a click."""

FRAME_S: Final = 0.01

_PCM: Final = 1
_FLOAT: Final = 3
_EXTENSIBLE: Final = 0xFFFE


class AudioError(ValueError):
    """The bytes are not a WAV this module can read, or hold no sound."""


def read_wav(data: bytes) -> tuple[Samples, int]:
    """Decode PCM (8/16/24/32-bit), float or WAVE_FORMAT_EXTENSIBLE WAV to mono floats in [-1, 1]."""
    # Our own RIFF walk rather than ``wave``: SAPI may write EXTENSIBLE headers and float
    # data, which the stdlib reader of Python 3.11 rejects.
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError("not a RIFF/WAVE file")
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    payload: bytes | None = None
    while pos + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, pos)
        body = data[pos + 8 : pos + 8 + size]
        if chunk_id == b"fmt ":
            tag, channels, rate = struct.unpack_from("<HHI", body, 0)
            bits = struct.unpack_from("<H", body, 14)[0]
            if tag == _EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack_from("<H", body, 24)[0]  # first two bytes of the sub-format GUID
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            payload = body
        pos += 8 + size + (size & 1)  # chunks are word-aligned
    if fmt is None or payload is None:
        raise AudioError("WAV has no fmt or data chunk")
    tag, channels, rate, bits = fmt
    samples = _decode(payload, tag, bits)
    if channels > 1:
        samples = samples[: len(samples) - len(samples) % channels].reshape(-1, channels).mean(axis=1)
    return samples, rate


def _decode(payload: bytes, tag: int, bits: int) -> Samples:
    """Interleaved sample bytes to floats in [-1, 1]."""
    width = bits // 8
    payload = payload[: len(payload) - len(payload) % width]
    if tag == _FLOAT and bits in (32, 64):
        return np.frombuffer(payload, dtype=f"<f{width}").astype(np.float64)
    if tag != _PCM:
        raise AudioError(f"unsupported WAV encoding tag {tag}")
    if bits == 8:
        return (np.frombuffer(payload, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    if bits == 16:
        return np.frombuffer(payload, dtype="<i2").astype(np.float64) / 32768.0
    if bits == 24:
        raw = np.frombuffer(payload, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        value = np.where(value & 0x800000, value - 0x1000000, value)
        return value.astype(np.float64) / 8_388_608.0
    if bits == 32:
        return np.frombuffer(payload, dtype="<i4").astype(np.float64) / 2_147_483_648.0
    raise AudioError(f"unsupported PCM sample width {bits} bits")


def encode_wav(samples: Samples, rate: int) -> bytes:
    """Mono floats in [-1, 1] to a 16-bit PCM WAV file's bytes (clipped, rounded)."""
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def resample(samples: Samples, rate_in: int, rate_out: int) -> Samples:
    """Band-limited resampling by FFT (exact low-pass at the lower Nyquist frequency)."""
    if rate_in == rate_out or len(samples) == 0:
        return samples
    # Zero padding keeps the FFT's circular wrap-around from smearing the end into the start.
    pad = max(64, rate_in // 50)
    padded = np.concatenate([np.zeros(pad), samples, np.zeros(pad)])
    n_in = len(padded)
    n_out = round(n_in * rate_out / rate_in)
    spectrum = np.fft.rfft(padded)
    bins = n_out // 2 + 1
    if bins <= len(spectrum):
        spectrum = spectrum[:bins]
    else:
        spectrum = np.concatenate([spectrum, np.zeros(bins - len(spectrum), dtype=complex)])
    out = np.fft.irfft(spectrum, n_out) * (n_out / n_in)
    cut = round(pad * rate_out / rate_in)
    return out[cut : n_out - cut]


def frame_rms(samples: Samples, rate: int, frame_s: float = FRAME_S) -> Samples:
    """Root-mean-square level of consecutive frames of ``frame_s`` seconds."""
    size = max(1, round(rate * frame_s))
    count = len(samples) // size
    if count == 0:
        return np.array([np.sqrt(np.mean(np.square(samples)))]) if len(samples) else np.zeros(0)
    frames = samples[: count * size].reshape(count, size)
    rms: Samples = np.sqrt(np.mean(np.square(frames), axis=1))
    return rms


def trim(samples: Samples, rate: int) -> Samples:
    """Cut leading and trailing silence, keep a short lead-in and tail, and fade the ends."""
    rms = frame_rms(samples, rate)
    if len(rms) == 0 or float(rms.max()) < SILENCE_FLOOR:
        raise AudioError("the clip is silent")
    threshold = max(float(rms.max()) * 10 ** (-SILENCE_BELOW_PEAK_DB / 20), SILENCE_FLOOR)
    voiced = np.flatnonzero(rms >= threshold)
    frame = round(rate * FRAME_S)
    start = max(0, int(voiced[0]) * frame - round(rate * LEAD_IN_S))
    stop = min(len(samples), (int(voiced[-1]) + 1) * frame + round(rate * TAIL_S))
    clip = samples[start:stop].copy()
    fade = min(round(rate * FADE_S), len(clip) // 2)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        clip[:fade] *= ramp
        clip[-fade:] *= ramp[::-1]
    return clip


def normalise_peak(samples: Samples, peak_dbfs: float = PEAK_DBFS) -> Samples:
    """Scale so the loudest sample sits at ``peak_dbfs``."""
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    if peak <= 0.0:
        raise AudioError("the clip is silent")
    return samples * (10 ** (peak_dbfs / 20) / peak)


def finish(wav: bytes, rate: int = OUTPUT_RATE) -> bytes:
    """An engine's WAV to the display's format: mono 16-bit at ``rate``, trimmed, peak-normalised."""
    samples, rate_in = read_wav(wav)
    samples = samples - float(np.mean(samples))  # some engines leave a DC offset that wastes headroom
    samples = resample(samples, rate_in, rate)
    return encode_wav(normalise_peak(trim(samples, rate)), rate)
