"""Readings of Japanese texts by Open JTalk with Sudachi: ``readings.json`` and the child that analyses.

    python -m queue_server.web.readings --write     # make readings.json again (after a catalog change)
    python -m queue_server.web.readings --check     # exit 1 when readings.json is out of date
    python -m queue_server.web.readings --analyse   # JSON list of texts on stdin → their readings on stdout

The only module that imports pyopenjtalk for readings, and never in the server process (ARCHITECTURE.md,
Pages): ``readings.json`` holds the readings of every text of the shipped catalogs and of the demo
office's names, and the server (``japanese.KnownReadings``) starts a child ``--analyse`` for a city's
own texts. Sudachi's readings of kanji (pyopenjtalk-plus's default) are kept: over every catalog text
they differ from plain Open JTalk's only in 「表で見る」 (ひょう, not おもて), but a city's texts may
differ more.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from .japanese import (_HAS_KANJI, READINGS_FILE, READINGS_FORMAT, Reading, Words, _analysable,
                       _split_okurigana, hiragana, overrides_pattern, with_overrides)

CORRECTIONS: Final[Mapping[str, str]] = {
    "番号札": "ばんごうふだ",   # Open JTalk (with Sudachi or not): ばんごうさつ
}
"""Words of the catalogs Open JTalk misreads, corrected for every city (a city's ``[readings]`` go on top)."""


def _pyopenjtalk() -> Any:
    """Open JTalk, with its import-time notice kept out of the output (stdout is the answer)."""
    with contextlib.redirect_stdout(io.StringIO()):
        import pyopenjtalk
    return pyopenjtalk


def open_jtalk_words(pyopenjtalk: Any, text: str) -> Words:
    """Readings of the kanji words of ``text`` as Open JTalk reads them, found back in ``text``.

    Open JTalk normalises its input (3 → 三, ・ → 、), so each kanji word it returns is searched
    for in the original from where the previous one ended; one not found there is skipped.
    """
    if not _HAS_KANJI.search(text):
        return ()
    readings: list[Reading] = []
    position = 0
    for feature in pyopenjtalk.run_frontend(text):
        word, kana = feature["string"], hiragana(feature["read"])
        if not _HAS_KANJI.search(word) or not re.fullmatch("[\u3041-\u309fー]+", kana):
            continue
        found = text.find(word, position)
        if found < 0:
            continue
        readings.extend(_split_okurigana(word, kana, found))
        position = found + len(word)
    return tuple(readings)


def analyse(plains: Iterable[str]) -> dict[str, list[list[Any]]]:
    """``{text: [[start, end, kana], …]}`` of each ``_analysable`` text with kanji (Open JTalk imported here)."""
    pyopenjtalk = _pyopenjtalk()
    pattern = overrides_pattern(CORRECTIONS)
    return {text: [[r.start, r.end, r.kana] for r in
                   with_overrides(text, open_jtalk_words(pyopenjtalk, text), CORRECTIONS, pattern)]
            for text in sorted(set(plains)) if _HAS_KANJI.search(text)}


def shipped_texts() -> list[str]:
    """The ``_analysable`` form of every text ``readings.json`` covers: the catalogs' and the demo's."""
    from ..cli import demo_config_path
    from ..config import load_config
    from .pages import load_catalogs, ruby_texts

    return [_analysable(text)[0] for text in ruby_texts(load_catalogs(), load_config(demo_config_path()))]


def build() -> dict[str, Any]:
    """The contents ``readings.json`` should have now."""
    return {"format": READINGS_FORMAT,
            "analyser": f"pyopenjtalk-plus {metadata.version('pyopenjtalk-plus')} (Sudachi's readings of kanji)",
            "readings": analyse(shipped_texts())}


def _dump(data: dict[str, Any]) -> str:
    lines = [f"{json.dumps(text, ensure_ascii=False)}: {json.dumps(words, ensure_ascii=False)}"
             for text, words in data["readings"].items()]
    return (f'{{"format": {data["format"]}, "analyser": {json.dumps(data["analyser"])}, "readings": {{\n'
            + ",\n".join(lines) + "\n}}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help=f"write {READINGS_FILE.name}")
    action.add_argument("--check", action="store_true", help=f"exit 1 when {READINGS_FILE.name} is out of date")
    action.add_argument("--analyse", action="store_true", help="texts (a JSON list) on stdin, readings on stdout")
    args = parser.parse_args(argv)
    if args.analyse:
        texts = json.loads(sys.stdin.read())
        sys.stdout.write(json.dumps(analyse(texts), ensure_ascii=False))
        return 0
    wanted = _dump(build())
    if args.write:
        READINGS_FILE.write_text(wanted, encoding="utf-8")
        return 0
    if Path(READINGS_FILE).read_text(encoding="utf-8") != wanted:
        print(f"{READINGS_FILE} is out of date: python -m queue_server.web.readings --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
