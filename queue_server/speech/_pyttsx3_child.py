"""Child process for one pyttsx3 render: JSON request on stdin, WAV written to ``out``.

Run by ``Pyttsx3Engine`` as a plain script (stdlib and pyttsx3 only, nothing from this project)
so it starts fast. Exit codes: 0 done, 3 driver unavailable, 4 voice not found, 1 anything else.
The reason goes to stderr on one line.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any, Final

UNAVAILABLE: Final = 3
BAD_VOICE: Final = 4
MAX_LISTED: Final = 40
FINISH_WAIT_S: Final = 15.0
"""Under the parent's 20 s timeout, so the parent hears why rather than killing a silent child."""
"""espeak-ng has over a hundred voices: list enough to spot the right tag, not a page."""


class BadVoice(LookupError):
    """No installed voice matches the configured one."""


def fail(code: int, message: str) -> int:
    """Report ``message`` to the parent on stderr (UTF-8 whatever the console) and return ``code``."""
    sys.stderr.buffer.write(message.replace("\n", " ").encode("utf-8") + b"\n")
    sys.stderr.flush()
    return code


def _tags(voice: Any) -> set[str]:
    """A voice's language tags, lower case with hyphens ("en-us", "zh-cn")."""
    return {str(language).casefold().replace("_", "-") for language in voice.languages or ()}


def find_voice(key: str, voices: list[Any]) -> str | None:
    """The id of the voice whose id, name or language tag is ``key``; else one of that language."""
    key = key.casefold()
    for voice in voices:
        names = {str(voice.id).casefold(), str(voice.id).casefold().rsplit("/", 1)[-1], str(voice.name).casefold()}
        if key in names or key in _tags(voice):
            return str(voice.id)
    # "zh" should find a SAPI voice tagged "zh-CN", "en" one tagged "en-US".
    for voice in voices:
        if any(tag.startswith(key + "-") for tag in _tags(voice)):
            return str(voice.id)
    return None


def resolve_voice(wanted: str, lang: str, voices: list[Any]) -> str:
    """The voice ``wanted``, else any voice of language ``lang``, else BadVoice listing them."""
    # The fallback lets the espeak-ng defaults ("cmn-latn-pinyin", "pt-br") work unchanged on a
    # Windows server: zh finds the SAPI voice tagged zh-CN, pt the one tagged pt-BR.
    found = find_voice(wanted, voices) or (find_voice(lang, voices) if lang else None)
    if found is not None:
        return found
    listed = sorted(f"{voice.name} ({'/'.join(voice.languages or ())})" for voice in voices)
    shown = ", ".join(listed[:MAX_LISTED]) + (
        f" and {len(listed) - MAX_LISTED} more" if len(listed) > MAX_LISTED else ""
    )
    raise BadVoice(f"no voice matches {wanted!r}; installed voices: {shown or 'none'}")


def main() -> int:
    """Read the request, render, write the file."""
    request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    try:
        import pyttsx3

        engine = pyttsx3.init(request.get("driver"))
    except Exception as error:  # any failure to load the driver means: not usable here
        return fail(UNAVAILABLE, f"{type(error).__name__}: {error}")
    try:
        if request.get("voice"):
            voice = resolve_voice(request["voice"], request.get("lang", ""), engine.getProperty("voices"))
            engine.setProperty("voice", voice)
        if request.get("rate") is not None:
            engine.setProperty("rate", int(request["rate"]))
        if request.get("volume") is not None:
            engine.setProperty("volume", float(request["volume"]))
    except (BadVoice, ValueError) as error:
        return fail(BAD_VOICE, str(error))
    out = Path(request["out"])
    finished = threading.Event()
    engine.connect("finished-utterance", lambda **_: finished.set())
    engine.save_to_file(request["text"], str(out))
    engine.runAndWait()
    # pyttsx3's espeak driver can return from runAndWait while its synthesis thread is still
    # writing the file (runAndWait queues endLoop behind save_to_file); exiting then leaves an
    # empty file. It reports the finished file with "finished-utterance". Drivers that save
    # synchronously (SAPI) may not report it without a message pump, so a complete file counts.
    if not finished.wait(FINISH_WAIT_S) and not complete_wav(out):
        return fail(1, f"the driver did not finish writing the file within {FINISH_WAIT_S:g} s")
    return 0


def complete_wav(path: Path) -> bool:
    """True if ``path`` is a whole RIFF file with sound: its header's size matches the file's."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    return len(data) > 44 and data[:4] == b"RIFF" and int.from_bytes(data[4:8], "little") + 8 == len(data)


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except Exception as error:  # the parent needs the reason, not a traceback it can't show
        raise SystemExit(fail(1, f"{type(error).__name__}: {error}")) from None
