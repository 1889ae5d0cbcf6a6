"""Cold and warm render time of call announcements, and what each engine costs on its own.

Run: ``.venv/bin/python benchmarks/speech_render.py [--calls 20]``. Cold = a phrase not yet in
the cache (engines already loaded); warm = the same call again (a cache hit). Each call uses a
different ticket number, so every cold render is a real render.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

from queue_server.speech.engines import OpenJTalkEngine, Pyttsx3Engine
from queue_server.speech.service import SpeechService

from calibration import print_calibration  # benchmarks/calibration.py: the machine's speed first
from stats import percentile  # benchmarks/stats.py (scripts run from this folder)

SMOKE_ARGS = ["--calls", "2"]
"""A small run for tests/test_benchmarks.py: it must exit 0 and print its figures, in seconds."""

FIRST_NUMBER: Final = 101



async def timed(calls: int, action: Callable[[int], Awaitable[object]]) -> list[float]:
    """Milliseconds of ``action(i)`` for i in 0…calls-1, one after another."""
    times = []
    for index in range(calls):
        started = time.perf_counter()
        await action(index)
        times.append((time.perf_counter() - started) * 1000)
    return times


def in_process_pyttsx3(calls: int) -> list[float]:
    """pyttsx3 kept in this process (what the engine does NOT do), to price the child process."""
    import pyttsx3

    engine = pyttsx3.init()
    engine.setProperty("voice", "en-us")
    engine.setProperty("rate", 150)
    times = []
    with tempfile.TemporaryDirectory() as folder:
        for index in range(calls):
            started = time.perf_counter()
            engine.save_to_file(
                f"Ticket number {FIRST_NUMBER + index}, please come to counter 3.", f"{folder}/{index}.wav"
            )
            engine.runAndWait()
            times.append((time.perf_counter() - started) * 1000)
    return times


async def main(calls: int) -> None:
    """Measure and print the table."""
    rows: list[tuple[str, list[float]]] = []
    with tempfile.TemporaryDirectory() as folder:
        speech = SpeechService(Path(folder))
        started = time.perf_counter()
        await speech.render("起動確認です。", "ja")  # loads Open JTalk's dictionary and voice
        rows.append(("first render after start (loads Open JTalk)", [(time.perf_counter() - started) * 1000]))

        for lang, offset in (("ja", 0), ("en", 1000)):

            def call(index: int, lang: str = lang, offset: int = offset) -> Awaitable[object]:
                return speech.announcement(str(FIRST_NUMBER + offset + index), "3番窓口", "3", lang)

            label = "ja" if lang == "ja" else "ja + en"
            rows.append((f"announcement {label}, cold", await timed(calls, call)))
            rows.append((f"announcement {label}, warm (cache hit)", await timed(calls, call)))
        await speech.aclose()

    openjtalk = OpenJTalkEngine()
    pyttsx3_child = Pyttsx3Engine(voice="en-us", rate=150)

    async def ja_engine(index: int) -> bytes:
        return await asyncio.to_thread(
            openjtalk.synthesize, f"受付番号 {2000 + index} 番のかた、3 番窓口へお越しください。", "ja"
        )

    async def en_engine(index: int) -> bytes:
        return await asyncio.to_thread(
            pyttsx3_child.synthesize, f"Ticket number {2000 + index}, please come to counter 3.", "en"
        )

    rows.append(("OpenJTalkEngine.synthesize only", await timed(calls, ja_engine)))
    rows.append(("Pyttsx3Engine.synthesize only (child process)", await timed(calls, en_engine)))
    rows.append(("pyttsx3 in-process, for comparison (not used)", in_process_pyttsx3(calls)))

    width = max(len(label) for label, _ in rows)
    print(f"| {'what':<{width}} | {'n':>3} | {'p50 ms':>7} | {'p99 ms':>7} |")
    print(f"|{'-' * (width + 2)}|-----:|--------:|--------:|")
    for label, times in rows:
        print(
            f"| {label:<{width}} | {len(times):>3} | {statistics.median(times):>7.1f} | {percentile(times, 99):>7.1f} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="different ticket numbers per row")
    calls = parser.parse_args().calls
    print_calibration()
    asyncio.run(main(calls))
