"""A call's announcement: chime, then a real Japanese voice (and the visitor's language), rendered ahead;
calls spoken together: one Japanese clip with every number, then each visitor language with its own."""

from __future__ import annotations

import dataclasses
import io
import wave

import numpy as np
import pytest
from aiohttp.test_utils import TestClient

from display.announcements import ANNOUNCEMENTS, PRERENDERERS, SPEECH, create_speech
from queue_server.config import Config
from queue_server.speech import SpeechConfigError, audio

from ..conftest import Api
from ..test_api_lifecycle import receive
from ..waiting import wait_until


def wav_samples(body: bytes) -> tuple[np.ndarray, int]:
    """Mono 16-bit PCM samples of a WAV file as floats in [-1, 1], and the sample rate."""
    with wave.open(io.BytesIO(body), "rb") as clip:
        assert (clip.getnchannels(), clip.getsampwidth()) == (1, 2)
        rate = clip.getframerate()
        pcm = np.frombuffer(clip.readframes(clip.getnframes()), dtype="<i2")
    return pcm.astype(np.float64) / 32768.0, rate


def assert_spoken_sentence(body: bytes, min_s: float = 2.0, max_s: float = 9.0) -> float:
    """A WAV of spoken calls: a few seconds long, loud, and voiced most of the time; its length in seconds."""
    samples, rate = wav_samples(body)
    duration = len(samples) / rate
    assert min_s <= duration <= max_s, f"{duration:.2f} s is not the length of the spoken calls"
    assert float(np.sqrt(np.mean(samples**2))) > 0.05, "too quiet to be speech"
    frames = audio.frame_rms(samples, rate, 0.05)
    assert (frames > frames.max() * 10 ** (-30 / 20)).mean() > 0.5, "mostly silence"
    return duration


async def fetch(api: Api, url: str) -> bytes:
    """GET a binary resource that must exist and be a WAV."""
    resp = await api.http.get(url)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "audio/wav"
    return await resp.read()


async def test_a_call_is_announced_with_the_chime_then_a_japanese_voice(staff: Api, visitor: Api) -> None:
    number = (await visitor.issue("pickup"))["ticket"]["number"]
    status, body = await staff.counter("2", "call-next")
    assert status == 200 and body["ticket"]["number"] == number

    status, answer = await visitor.get(f"/api/offices/main/announcement?number={number}&counter=2")
    assert status == 200, answer
    kinds = [(clip["kind"], clip.get("lang")) for clip in answer["audio"]]
    assert kinds == [("chime", None), ("speech", "ja")]
    assert answer["audio"][1]["text"] == f"受付番号 {number} 番のかた、2 番窓口へお越しください。"

    chime, _ = wav_samples(await fetch(visitor, answer["audio"][0]["url"]))
    assert float(np.max(np.abs(chime))) > 0.3
    assert_spoken_sentence(await fetch(visitor, answer["audio"][1]["url"]))


async def test_a_visitor_of_another_language_hears_japanese_then_their_own(staff: Api, visitor: Api) -> None:
    number = (await visitor.issue("pickup", lang="en"))["ticket"]["number"]
    await staff.counter("2", "call-next")
    status, answer = await visitor.get(f"/api/offices/main/announcement?number={number}&counter=2")
    assert status == 200, answer
    assert [clip.get("lang") for clip in answer["audio"]] == [None, "ja", "en"]
    assert answer["lang"] == "en"
    assert answer["audio"][2]["text"] == f"Ticket number {number}, please come to counter 2."
    assert_spoken_sentence(await fetch(visitor, answer["audio"][2]["url"]))


async def test_only_calls_that_happened_are_spoken_and_bad_requests_say_why(staff: Api, visitor: Api) -> None:
    number = (await visitor.issue("pickup"))["ticket"]["number"]
    status, body = await visitor.get(f"/api/offices/main/announcement?number={number}&counter=2")
    assert status == 404 and body["error"]["code"] == "not_found"  # issued, not called yet
    await staff.counter("2", "call-next")
    status, body = await visitor.get(f"/api/offices/main/announcement?number={number}&counter=1")
    assert status == 404, body  # called, but to another counter
    status, body = await visitor.get("/api/offices/main/announcement?number=999&counter=2")
    assert status == 404, body
    status, body = await visitor.get(f"/api/offices/main/announcement?number={number}&counter=2&lang=xx")
    assert status == 400 and body["error"]["field"] == "lang"
    status, body = await visitor.get("/api/offices/main/announcement?counter=2")
    assert status == 400 and body["error"]["field"] == "number"
    status, body = await visitor.get("/api/offices/main/announcement?number=..%2F1&counter=2")
    assert status == 400 and body["error"]["field"] == "number"
    status, body = await visitor.get(f"/api/offices/nowhere/announcement?number={number}&counter=2")
    assert status == 404, body


async def test_audio_urls_cannot_reach_outside_the_speech_cache(visitor: Api) -> None:
    for path in ("/api/audio/..%2F..%2Fpyproject.toml.wav", "/api/audio/../../etc/passwd",
                 "/api/audio/" + "0" * 32 + ".wav", "/api/audio/%2e%2e%2fchime.wav"):
        resp = await visitor.http.get(path)
        assert resp.status == 404, path
        assert resp.content_type != "audio/wav"


def pending(client: TestClient) -> int:
    """Renders under way."""
    return len(client.app[ANNOUNCEMENTS].pending)


async def wait_for_prerender(client: TestClient) -> None:
    """Until the office's pre-renders started by the call event have finished."""
    speech, pending = client.app[SPEECH], client.app[ANNOUNCEMENTS].pending

    async def settled() -> bool:
        return bool(speech.render_counts) and not pending

    await wait_until(settled, "done pre-rendering the call")


async def test_a_call_event_renders_the_announcement_before_anyone_asks(
        client: TestClient, staff: Api, visitor: Api) -> None:
    speech = client.app[SPEECH]
    number = (await visitor.issue("pickup", lang="en"))["ticket"]["number"]
    assert speech.render_counts == {}
    display = await visitor.http.ws_connect("/api/ws")  # a lobby display follows the office
    await display.send_json({"id": 1, "type": "subscribe", "view": "lobby", "office": "main"})
    assert (await display.receive_json())["success"] is True
    await staff.counter("2", "call-next")
    await wait_for_prerender(client)
    rendered, hits = speech.render_counts, speech.cache_hits
    assert rendered == {"openjtalk": 1, "pyttsx3": 1}
    assert speech.clip_path(speech.clip_id(f"受付番号 {number} 番のかた、2 番窓口へお越しください。", "ja"))

    status, answer = await visitor.get(f"/api/offices/main/announcement?number={number}&counter=2")
    assert status == 200, answer
    assert speech.render_counts == rendered, "the display's request had to render: the cache was cold"
    assert speech.cache_hits > hits

    # A recall is rendered ahead too, as a recall: it says the number is called again.
    await staff.counter("2", "recall")

    async def recall_rendered() -> bool:
        return sum(speech.render_counts.values()) == 4 and not pending(client)

    await wait_until(recall_rendered, "done pre-rendering the recall (Japanese and English)")
    rendered = speech.render_counts
    status, again = await visitor.get(f"/api/offices/main/announcement?recalls={number}:2")
    assert status == 200, again
    assert again["audio"][1]["text"] == f"もう一度お呼びします。受付番号 {number} 番のかた、2 番窓口へお越しください。"
    assert again["audio"][2]["text"] == f"Calling again. Ticket number {number}, please come to counter 2."
    assert speech.render_counts == rendered, "the display's request had to render the recall"
    await display.close()


async def test_without_a_display_calls_are_not_rendered_ahead(client: TestClient, staff: Api, visitor: Api) -> None:
    speech = client.app[SPEECH]
    number = (await visitor.issue("pickup"))["ticket"]["number"]
    # A counter panel (not a display) follows the office: once it has the call event, the pre-renderer
    # has had it too, since the hub hands each event to all of the office's subscribers at once.
    panel = await staff.http.ws_connect("/api/ws")
    await panel.send_json({"id": 1, "type": "subscribe", "view": "counter", "office": "main", "counter": "2"})
    await receive(panel, "snapshot")
    await staff.counter("2", "call-next")
    while (await receive(panel, "event"))["event"]["type"] != "ticket.called":
        pass
    assert speech.render_counts == {} and not client.app[ANNOUNCEMENTS].pending
    status, answer = await visitor.get(f"/api/offices/main/announcement?number={number}&counter=2")
    assert status == 200 and speech.render_counts == {"openjtalk": 1}  # rendered when asked
    await panel.close()


async def test_the_speech_cache_lives_in_the_data_folder(client: TestClient, config: Config) -> None:
    speech = client.app[SPEECH]
    assert speech.cache_dir == config.server.data_dir / "speech" and speech.cache_dir.is_dir()
    assert set(client.app[PRERENDERERS]) == set(config.offices)


def test_a_bad_voice_configuration_names_the_file_and_key(config: Config) -> None:
    bad = dataclasses.replace(config, speech={"voices": {"en": {"engine": "gtts"}}})
    with pytest.raises(SpeechConfigError, match=r"office\.toml: speech\.voices\.en\.engine = 'gtts': allowed"):
        create_speech(bad)
    with pytest.raises(SpeechConfigError, match=r"\[speech\] has unknown keys \['voice'\]"):
        create_speech(dataclasses.replace(config, speech={"voice": {}}))


async def call_three_at_three_counters(staff: Api, visitor: Api) -> tuple[str, str, str]:
    """A pickup (Japanese visitor) called to 2, an application (English) to 3, one (English) recalled at 1."""
    pickup = (await visitor.issue("pickup"))["ticket"]["number"]
    first = (await visitor.issue("application", lang="en"))["ticket"]["number"]
    second = (await visitor.issue("application", lang="en"))["ticket"]["number"]
    for counter, action, number in (("2", "call-next", pickup), ("3", "call-next", first),
                                    ("1", "call-next", second), ("1", "recall", second)):
        status, body = await staff.counter(counter, action)
        assert status == 200 and body["ticket"]["number"] == number, body
    return pickup, first, second


async def test_calls_spoken_together_are_one_japanese_clip_then_each_language_with_its_own_numbers(
        staff: Api, visitor: Api) -> None:
    pickup, first, second = await call_three_at_three_counters(staff, visitor)
    assert (pickup, first, second) == ("300", "A001", "A002")

    status, answer = await visitor.get(
        f"/api/offices/main/announcement?calls={pickup}:2,{first}:3&recalls={second}:1")
    assert status == 200, answer
    assert answer["calls"] == [{"number": "300", "counter": "2", "lang": "ja", "recall": False},
                               {"number": "A001", "counter": "3", "lang": "en", "recall": False},
                               {"number": "A002", "counter": "1", "lang": "en", "recall": True}]
    chime, japanese, english = answer["audio"]
    assert chime["kind"] == "chime"
    assert (japanese["lang"], japanese["numbers"]) == ("ja", ["300", "A001", "A002"])
    assert japanese["text"] == "300 番のかたは 2 番、エー 1 番のかたは 3 番、もう一度、エー 2 番のかたは 1 番窓口へお越しください。"
    assert (english["lang"], english["numbers"]) == ("en", ["A001", "A002"])
    assert english["text"] == ("Ticket number A1, please come to counter 3. "
                               "Calling again. Ticket number A2, please come to counter 1.")

    # Real speech, as long as it says: the Japanese clip's length is in the answer, the others' on the clip.
    spoken = assert_spoken_sentence(await fetch(visitor, japanese["url"]), 6.0, 14.0)
    assert japanese["duration_ms"] == pytest.approx(spoken * 1000, abs=1)
    head = await visitor.http.head(english["url"])
    assert head.status == 200
    assert int(head.headers["X-Clip-Duration-Ms"]) == pytest.approx(
        assert_spoken_sentence(await fetch(visitor, english["url"]), 5.0, 14.0) * 1000, abs=1)


@pytest.mark.parametrize(("query", "status", "field", "says"), [
    ("calls=300", 400, "calls", "item 1 ('300') is not one"),
    ("calls=300:2,", 400, "calls", "item 2 ('') is not one"),
    ("calls=", 400, "calls", "number:counter"),
    ("calls=300:2,300:2", 400, "calls", "ticket 300 is listed twice"),
    ("calls=300:2&recalls=300:2", 400, "recalls", "ticket 300 is listed twice (also in calls)"),
    ("calls=300:2&number=300", 400, "number", "is for one call"),
    ("calls=300:2&lang=en", 400, "lang", "in the ticket's own language"),
    ("calls=300:2&calls=A001:3", 400, "calls", "given more than once"),
    ("calls=" + ",".join(f"{n}:2" for n in range(300, 309)), 400, "calls", "at most 8 calls"),
    ("recalls=" + ",".join(f"{n}:2" for n in range(300, 309)), 400, "recalls", "at most 8 calls"),
    ("calls=300:2,A001:7", 404, None, "no counter '7'"),
    ("calls=300:2,A009:3", 404, None, "ticket A009 has not been called to counter 3"),
    ("calls=300:3", 404, None, "ticket 300 has not been called to counter 3"),
])
async def test_a_bad_group_says_which_field_is_wrong(staff: Api, visitor: Api, query: str, status: int,
                                                     field: str | None, says: str) -> None:
    await call_three_at_three_counters(staff, visitor)
    got, body = await visitor.get(f"/api/offices/main/announcement?{query}")
    assert got == status, body
    assert body["error"].get("field") == field and says in body["error"]["message"], body
