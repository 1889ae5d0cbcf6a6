"""Call announcements are spoken offline: Open JTalk for Japanese, pyttsx3/espeak-ng for the rest."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import re
import sys
import wave
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from queue_server.speech import (
    EngineUnavailable,
    PhraseCatalog,
    PhraseError,
    SpeechConfigError,
    SpeechService,
    UnknownLanguage,
    audio,
)
from queue_server.speech.chime import NOTE_SPACING_S, NOTES_HZ, chime_wav
from queue_server.speech.engines import Pyttsx3Engine, install_hint
from queue_server.speech.phrases import Called

from ..waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
VOICED_BELOW_PEAK_DB = 30.0
MAX_PAUSE_S = 1.2
"""Open JTalk pauses up to about 0.9 s at a comma in slow やさしい日本語; a gap longer than this is a fault."""


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[SpeechService]:
    """A service with the default voices and an empty cache."""
    speech = SpeechService(tmp_path / "speech")
    yield speech
    await speech.aclose()


def read_clip(path: Path) -> tuple[np.ndarray, int]:
    """A finished clip's samples, checking it is the display's format: mono 16-bit PCM."""
    with wave.open(str(path), "rb") as clip:
        assert (clip.getnchannels(), clip.getsampwidth()) == (1, 2)
        rate = clip.getframerate()
        pcm = np.frombuffer(clip.readframes(clip.getnframes()), dtype="<i2")
    return pcm.astype(np.float64) / 32768.0, rate


def assert_is_speech(path: Path, min_s: float, max_s: float) -> None:
    """A clip of plausible length for one sentence, loud, with voice all through, peak-normalised."""
    samples, rate = read_clip(path)
    duration = len(samples) / rate
    assert min_s <= duration <= max_s, f"{duration:.2f} s is not the length of a spoken call"
    assert float(np.sqrt(np.mean(samples**2))) > 0.05, "too quiet to be speech"
    assert float(np.max(np.abs(samples))) == pytest.approx(10 ** (audio.PEAK_DBFS / 20), abs=0.01)
    frames = audio.frame_rms(samples, rate, 0.05)
    voiced = frames > frames.max() * 10 ** (-VOICED_BELOW_PEAK_DB / 20)
    assert voiced.mean() > 0.5, "mostly silence"
    # Voice all through: natural pauses (a comma) only, no long hole where speech broke off.
    longest_pause = max((len(run) for run in "".join("#" if v else "." for v in voiced).split("#")), default=0)
    assert longest_pause * 0.05 <= MAX_PAUSE_S, f"a {longest_pause * 0.05:.2f} s silence inside the clip"
    # Trimmed: the clip starts and ends near its voice, not in long silence.
    assert voiced[:4].any() and voiced[-6:].any()


async def test_japanese_call_is_spoken_by_open_jtalk(service: SpeechService) -> None:
    """A Japanese visitor's call is one clip: the full Japanese sentence, real speech."""
    clips = await service.announcement("123", "3番窓口", "3", "ja")

    assert [(clip.lang, clip.text) for clip in clips] == [("ja", "受付番号 123 番のかた、3 番窓口へお越しください。")]
    assert service.render_counts == {"openjtalk": 1}
    assert_is_speech(clips[0].path, 3.0, 8.0)


async def test_english_visitor_hears_japanese_then_english_from_espeak(service: SpeechService) -> None:
    """For another language the Japanese clip comes first, then the visitor's language via pyttsx3."""
    clips = await service.announcement("123", "3番窓口", "3", "en")

    assert [clip.lang for clip in clips] == ["ja", "en"]
    assert clips[1].text == "Ticket number 123, please come to counter 3."
    assert service.render_counts == {"openjtalk": 1, "pyttsx3": 1}
    assert_is_speech(clips[0].path, 3.0, 8.0)
    assert_is_speech(clips[1].path, 2.0, 8.0)


@pytest.mark.parametrize("lang", ["zh", "ko", "pt", "vi", "ja-easy"])
async def test_every_catalog_language_is_spoken(service: SpeechService, lang: str) -> None:
    """Each language of the catalog gives a real second clip with the default voices."""
    clips = await service.announcement("A012", "3番窓口", "3", lang)

    assert [clip.lang for clip in clips] == ["ja", lang]
    assert_is_speech(clips[1].path, 1.5, 9.0)


async def test_cached_phrase_is_served_without_rendering_again(service: SpeechService, tmp_path: Path) -> None:
    """The second request for a phrase, also from a restarted service, reuses the same file."""
    first = await service.render("受付番号 5 番のかた、1 番窓口へお越しください。", "ja")
    inode = first.stat().st_ino

    again = await service.render("受付番号 5 番のかた、1 番窓口へお越しください。", "ja")
    restarted = SpeechService(tmp_path / "speech")
    after_restart = await restarted.render("受付番号 5 番のかた、1 番窓口へお越しください。", "ja")
    await restarted.aclose()

    assert again == after_restart == first
    assert first.stat().st_ino == inode, "the file was rewritten"
    assert service.render_counts == {"openjtalk": 1}
    assert service.cache_hits == 1
    assert restarted.render_counts == {}


async def test_concurrent_requests_for_one_phrase_render_once(service: SpeechService) -> None:
    """Eight displays asking for the same new phrase at once share a single render."""
    text = "受付番号 321 番のかた、2 番窓口へお越しください。"

    paths = await asyncio.gather(*(service.render(text, "ja") for _ in range(8)), service.render("別の文です。", "ja"))

    assert len(set(paths[:8])) == 1
    assert paths[8] != paths[0]
    assert service.render_counts == {"openjtalk": 2}
    assert not list(service.cache_dir.glob(".render-*")), "a temp file was left behind"


async def test_config_mapping_chooses_the_engine(tmp_path: Path) -> None:
    """The voices mapping decides which engine speaks a language, and the cache keeps them apart."""
    swapped = SpeechService(
        tmp_path / "speech", {"ja": {"engine": "pyttsx3", "voice": "ja"}, "en": {"engine": "openjtalk"}}
    )
    default = SpeechService(tmp_path / "speech")
    try:
        by_espeak = await swapped.render("こんにちは", "ja")
        by_openjtalk = await swapped.render("こんにちは", "en")
        assert swapped.render_counts == {"pyttsx3": 1, "openjtalk": 1}

        # The cache key is engine, voice and text, not the language: the default "ja" voice is
        # the swapped "en" one, so it finds that clip; the espeak one is a different clip.
        by_default = await default.render("こんにちは", "ja")
        assert default.render_counts == {}
        assert by_default == by_openjtalk != by_espeak
        assert swapped.voice("en").engine == "openjtalk"
    finally:
        await swapped.aclose()
        await default.aclose()


def test_pyttsx3_renders_stay_complete_when_many_run_at_once() -> None:
    """Parallel renders on a busy CPU each return the whole sentence, never an empty or cut file."""
    engine = Pyttsx3Engine(voice="en-us", rate=150)
    texts = [f"Ticket number {100 + index}, please come to counter 3." for index in range(12)]

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda text: engine.synthesize(text, "en"), texts))

    for wav in results:
        samples, rate = audio.read_wav(wav)
        assert 2.5 <= len(samples) / rate <= 8.0


@pytest.mark.parametrize(
    ("voices", "message"),
    [
        (
            {"en": {"engine": "gtts"}},
            "office.toml: speech.voices.en.engine = 'gtts': allowed engines are openjtalk, pyttsx3",
        ),
        (
            {"en": {"engine": "pyttsx3", "speed": 1.0}},
            "speech.voices.en.speed: not an option of engine 'pyttsx3'; allowed: voice, rate, volume, driver",
        ),
        ({"ja": {"engine": "openjtalk", "speed": 9}}, "speech.voices.ja.speed = 9: must be between 0.5 and 2"),
        (
            {"en": {"engine": "pyttsx3", "driver": "festival"}},
            "speech.voices.en.driver = 'festival': allowed: espeak, sapi5, nsss",
        ),
        ({"en": "espeak"}, "speech.voices.en must be a table"),
    ],
)
def test_bad_voices_config_says_which_key_and_what_is_allowed(
    tmp_path: Path, voices: dict[str, object], message: str
) -> None:
    """A wrong voices table fails at start-up with the file, the key and the allowed values."""
    with pytest.raises(SpeechConfigError) as raised:
        SpeechService(tmp_path, voices, source="office.toml: speech.voices")
    assert message in str(raised.value)


@pytest.mark.skipif(sys.platform == "win32", reason="SAPI 5 exists there")
async def test_missing_pyttsx3_driver_still_announces_in_japanese(tmp_path: Path) -> None:
    """When the visitor's engine can't start, the call is still announced in Japanese."""
    speech = SpeechService(tmp_path, {"en": {"engine": "pyttsx3", "driver": "sapi5", "voice": "en-US"}})
    try:
        with pytest.raises(EngineUnavailable, match="pyttsx3 driver 'sapi5' cannot start"):
            await speech.render("Ticket number 123", "en")
        clips = await speech.announcement("123", "3番窓口", "3", "en")
    finally:
        await speech.aclose()

    assert [clip.lang for clip in clips] == ["ja"]
    assert speech.render_counts == {"openjtalk": 1}


async def test_unknown_voice_falls_back_to_one_for_the_language_or_says_what_exists(tmp_path: Path) -> None:
    """A voice name not installed here still speaks the language; with none for it, the error lists voices."""
    speech = SpeechService(
        tmp_path,
        {"en": {"engine": "pyttsx3", "voice": "Microsoft Zira"}, "xx": {"engine": "pyttsx3", "voice": "no-such-voice"}},
    )
    try:
        english = await speech.render("Ticket number 123, please come to counter 3.", "en")
        with pytest.raises(EngineUnavailable, match=r"no voice matches 'no-such-voice'; installed voices: .*English"):
            await speech.render("Hello", "xx")
    finally:
        await speech.aclose()

    assert_is_speech(english, 2.0, 8.0)


def test_install_hint_names_the_missing_system_package() -> None:
    """The error for a missing espeak-ng tells the administrator what to install."""
    assert "apt-get install espeak-ng" in install_hint(None, "linux")
    assert "apt-get install espeak-ng" in install_hint("espeak", "win32")
    assert "Windows voice" in install_hint(None, "win32")


async def test_unsupported_visitor_language_is_announced_in_japanese_only(service: SpeechService) -> None:
    """A language without phrases doesn't stop the call; render() of it is an error."""
    clips = await service.announcement("123", "3番窓口", "3", "fr")

    assert [clip.lang for clip in clips] == ["ja"]
    with pytest.raises(UnknownLanguage, match="'fr'"):
        await service.render("Bonjour", "fr")


def test_ticket_numbers_and_counters_are_read_naturally() -> None:
    """Digits stay digits for the engine; a letter prefix is spelled; leading zeros are dropped."""
    catalog = PhraseCatalog.load()
    ja, en = catalog.phrases("ja"), catalog.phrases("en")

    assert ja.call_text("A012", "3番窓口", "3") == "受付番号 エー 12 番のかた、3 番窓口へお越しください。"
    assert ja.call_text("ｂ-7", "", "０３") == "受付番号 ビー 7 番のかた、3 番窓口へお越しください。"
    assert ja.call_text("123", "総合案内", "") == "受付番号 123 番のかた、総合案内へお越しください。"
    assert en.call_text("A012", "3番窓口", "3") == "Ticket number A12, please come to counter 3."
    with pytest.raises(PhraseError, match="expected digits with an optional latin-letter prefix"):
        ja.say_number("12A")


def test_open_jtalk_reads_the_announcement_as_intended() -> None:
    """The catalog's decisions hold in the engine: 123 as a number, A as エー, かた not ほう."""
    import pyopenjtalk

    ja = PhraseCatalog.load().phrases("ja")
    reading = pyopenjtalk.g2p(ja.call_text("A123", "3番窓口", "3"), kana=True)

    assert reading == "ウケツケバンゴーエーヒャクニジューサンバンノカタ、サンバンマドグチエオコシクダサイ。"


def test_every_call_is_announced_in_japanese_first() -> None:
    """The catalog gives Japanese first, then the visitor's language; Japanese alone for ja."""
    catalog = PhraseCatalog.load()

    assert [lang for lang, _ in catalog.announcement_texts("1", "", "1", "ja")] == ["ja"]
    assert [lang for lang, _ in catalog.announcement_texts("1", "", "1", "ko")] == ["ja", "ko"]


async def test_clip_ids_are_checked_before_touching_the_disk(service: SpeechService) -> None:
    """Only rendered clips are served by id; a path-like id is refused."""
    clip = (await service.announcement("7", "1番窓口", "1", "ja"))[0]

    assert service.clip_path(clip.id) == clip.path
    assert service.clip_path("0" * 32) is None
    assert service.clip_path("../../etc/passwd") is None


async def test_prune_removes_the_least_recently_used_clips(service: SpeechService) -> None:
    """Pruning keeps the cache under its budget by dropping the clips not used lately."""
    old = await service.render("古い文です。", "ja")
    new = await service.render("新しい文です。", "ja")

    async def reused_later() -> bool:
        """A hit refreshes the clip's time; file times are coarse (ms), so re-use it until that shows."""
        assert await service.render("古い文です。", "ja") == old
        return old.stat().st_mtime_ns > new.stat().st_mtime_ns

    await wait_until(reused_later, "the re-used clip marked later than the other")

    removed = service.prune(max_bytes=old.stat().st_size)

    assert removed == 1
    assert old.exists() and not new.exists()


def test_finish_makes_mono_16_bit_trimmed_peak_normalised() -> None:
    """An engine's stereo 48 kHz WAV with silence around a tone becomes the display's format."""
    rate = 48_000
    tone = 0.2 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)
    silence = np.zeros(rate // 2)
    left = np.concatenate([silence, tone, silence])
    stereo = (np.stack([left, left], axis=1) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(stereo.tobytes())

    samples, out_rate = audio.read_wav(audio.finish(buffer.getvalue()))

    assert out_rate == audio.OUTPUT_RATE
    assert 1.0 <= len(samples) / out_rate <= 1.0 + audio.LEAD_IN_S + audio.TAIL_S + 0.02
    assert float(np.max(np.abs(samples))) == pytest.approx(10 ** (audio.PEAK_DBFS / 20), abs=0.001)
    spectrum = np.abs(np.fft.rfft(samples))
    assert np.argmax(spectrum) * out_rate / len(samples) == pytest.approx(440, abs=2)
    with pytest.raises(audio.AudioError, match="silent"):
        audio.finish(audio.encode_wav(np.zeros(rate), rate))


def test_chime_is_three_rising_tones_and_the_display_copy_is_current() -> None:
    """The chime rises through its three notes, and display/static/chime.wav is this chime."""
    assert (REPO / "display" / "static" / "chime.wav").read_bytes() == chime_wav()

    samples, rate = audio.read_wav(chime_wav())
    heard = []
    for index in range(len(NOTES_HZ)):
        start = round((index * NOTE_SPACING_S + 0.02) * rate)
        window = samples[start : start + round(0.25 * rate)]
        # Each note is the loudest partial just after its onset (earlier notes have decayed).
        spectrum = np.abs(np.fft.rfft(window * np.hanning(len(window))))
        heard.append(np.argmax(spectrum) * rate / len(window))
    assert heard == pytest.approx(list(NOTES_HZ), abs=8)
    assert 1.0 <= len(samples) / rate <= 3.0


@pytest.mark.parametrize(("counter_name", "counter_no", "expected"), [
    ("3번 창구", "3", "305번 고객님, 3번 창구로 와 주십시오."),      # 창구: no final consonant → 로
    ("안내석", "", "305번 고객님, 안내석으로 와 주십시오."),          # 석 ends in ㄱ → 으로
    ("민원실", "", "305번 고객님, 민원실로 와 주십시오."),            # 실 ends in ㄹ → 로
])
def test_the_korean_call_takes_the_particle_its_counter_needs(counter_name: str, counter_no: str,
                                                                expected: str) -> None:
    """No templated 「(으)로」 and no 「안내석로」: the particle follows the counter as it is read."""
    assert PhraseCatalog.load().phrases("ko").call_text("305", counter_name, counter_no) == expected


# --- calls spoken together (the display groups the calls that waited behind one another) ---------

AT_3, AT_3_TOO, AT_5 = Called("101", "3番窓口", "3"), Called("102", "3番窓口", "3"), Called("205", "5番窓口", "5")


def test_calls_to_one_counter_are_one_sentence_and_several_counters_share_one() -> None:
    """Each counter is named once after its numbers; 受付番号 only when a call is spoken alone."""
    ja = PhraseCatalog.load().phrases("ja")

    assert ja.group_text([AT_3]) == ja.call_text("101", "3番窓口", "3")
    assert ja.group_text([AT_3, AT_3_TOO]) == "101 番、102 番のかた、3 番窓口へお越しください。"
    assert ja.group_text([AT_3, AT_5]) == "101 番のかたは 3 番、205 番のかたは 5 番窓口へお越しください。"
    assert ja.group_text([AT_3, AT_5, AT_3_TOO]) == (
        "101 番、102 番のかたは 3 番、205 番のかたは 5 番窓口へお越しください。")
    # A counter without a number is said by its name, and then every counter in full.
    assert ja.group_text([AT_3, Called("7", "総合案内", "")]) == (
        "101 番のかたは 3 番窓口、7 番のかたは 総合案内へお越しください。")


def test_a_recall_in_a_group_says_it_is_called_again_after_the_first_calls() -> None:
    ja = PhraseCatalog.load().phrases("ja")
    recall = dataclasses.replace(AT_5, recall=True)

    assert ja.group_text([recall]) == "もう一度お呼びします。受付番号 205 番のかた、5 番窓口へお越しください。"
    # With first calls, in the same sentence after 「もう一度」: a sentence of their own would take ~3 s more.
    assert ja.group_text([recall, AT_3, dataclasses.replace(AT_3_TOO, counter_name="4番窓口", counter_no="4")]) == (
        "101 番のかたは 3 番、102 番のかたは 4 番、もう一度、205 番のかたは 5 番窓口へお越しください。")
    assert ja.group_text([recall, dataclasses.replace(AT_3, recall=True)]) == (
        "もう一度お呼びします。205 番のかたは 5 番、101 番のかたは 3 番窓口へお越しください。")


def test_other_languages_give_each_counter_its_own_sentence() -> None:
    catalog = PhraseCatalog.load()
    en, ko = catalog.phrases("en"), catalog.phrases("ko")

    assert en.group_text([AT_3, AT_3_TOO]) == "Ticket numbers 101 and 102, please come to counter 3."
    assert en.group_text([AT_3, AT_5, dataclasses.replace(AT_3_TOO, recall=True)]) == (
        "Ticket number 101, please come to counter 3. Ticket number 205, please come to counter 5. "
        "Calling again. Ticket number 102, please come to counter 3.")
    assert ko.group_text([AT_3, AT_3_TOO]) == "101번, 102번 고객님, 3번 창구로 와 주십시오."


def test_a_group_is_spoken_in_japanese_then_in_each_visitors_language_for_their_own_numbers() -> None:
    calls = [dataclasses.replace(AT_3, lang="en"), AT_5, dataclasses.replace(AT_3_TOO, lang="zh"),
             Called("306", "1番窓口", "1", lang="en"), Called("407", "1番窓口", "1", lang="fr")]

    texts = PhraseCatalog.load().group_texts(calls)

    assert [(lang, numbers) for lang, _, numbers in texts] == [
        ("ja", ("101", "205", "102", "306", "407")), ("en", ("101", "306")), ("zh", ("102",))]  # no fr phrases
    assert texts[1][1] == "Ticket number 101, please come to counter 3. Ticket number 306, please come to counter 1."
    assert texts[2][1] == "请 102 号到 3 号窗口办理。"


@pytest.mark.parametrize(("lang", "calls", "reading"), [
    ("ja", [AT_3, AT_3_TOO], "ヒャクイチバン、ヒャクニバンノカタ、サンバンマドグチエオコシクダサイ。"),
    ("ja", [AT_3, dataclasses.replace(AT_5, number="A205")],
     "ヒャクイチバンノカタワサンバン、エーニヒャクゴバンノカタワゴバンマドグチエオコシクダサイ。"),
    ("ja", [dataclasses.replace(AT_5, recall=True)],
     "モーイチドオヨビシマス。ウケツケバンゴーニヒャクゴバンノカタ、ゴバンマドグチエオコシクダサイ。"),
    ("ja", [AT_3, dataclasses.replace(AT_5, recall=True)],
     "ヒャクイチバンノカタワサンバン、モーイチド、ニヒャクゴバンノカタワゴバンマドグチエオコシクダサイ。"),
    ("ja-easy", [AT_3, AT_5], "ヒャクイチバンノカタワサンバン、ニヒャクゴバンノカタワゴバンノマドグチニキテクダサイ。"),
    ("ja-easy", [AT_3, AT_3_TOO], "ヒャクイチバントヒャクニバンノカタ、サンバンノマドグチニキテクダサイ。"),
])
def test_open_jtalk_reads_a_group_as_intended(lang: str, calls: list[Called], reading: str) -> None:
    """かた not ほう, the particle は as ワ, numbers as numbers, in both kinds of Japanese."""
    import pyopenjtalk

    assert pyopenjtalk.g2p(PhraseCatalog.load().phrases(lang).group_text(calls), kana=True) == reading


async def test_a_group_is_spoken_whole_and_shorter_than_its_calls_one_by_one(service: SpeechService) -> None:
    """Two calls to one counter, or to two counters, take less time together than apart; real speech."""
    ja = PhraseCatalog.load().phrases("ja")
    alone = [await service.render(ja.group_text([call]), "ja") for call in (AT_3, AT_3_TOO, AT_5)]
    one_counter = await service.render(ja.group_text([AT_3, AT_3_TOO]), "ja")
    two_counters = await service.render(ja.group_text([AT_3, AT_5]), "ja")
    english = await service.render(PhraseCatalog.load().phrases("en").group_text([AT_3, AT_5]), "en")

    def seconds(path: Path) -> float:
        samples, rate = read_clip(path)
        return len(samples) / rate

    assert_is_speech(one_counter, 3.5, 8.0)
    assert_is_speech(two_counters, 4.0, 9.0)
    assert_is_speech(english, 5.0, 12.0)
    assert seconds(one_counter) < 0.75 * (seconds(alone[0]) + seconds(alone[1]))
    assert seconds(two_counters) < 0.75 * (seconds(alone[0]) + seconds(alone[2]))


@pytest.mark.parametrize(("table", "message"), [
    ({"spread": "{parts}"},
     "spread, spread_part, spread_counter, spread_recall go together; missing spread_part, spread_counter, spread_recall"),
    ({"calls": "{numbers} {counter} {lang}"}, "calls: unknown placeholders ['lang']"),
    ({"recall": ""}, "recall is required and must be a non-empty string"),
])
def test_a_bad_group_phrase_names_the_key(tmp_path: Path, table: dict[str, str], message: str) -> None:
    path = tmp_path / "phrases.toml"
    ja = {"call": "{number} {counter}", "counter": "{counter_no}", "number": "{digits}", "calls": "{numbers} {counter}",
          "listed": "{number}", "comma": "、", "last": "、", "recall": "{call}"} | table
    path.write_text("[ja]\n" + "".join(f"{key} = {value!r}\n".replace("'", '"') for key, value in ja.items()),
                    encoding="utf-8")
    with pytest.raises(PhraseError, match=re.escape(message)):
        PhraseCatalog.load(path)
