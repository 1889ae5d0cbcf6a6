"""A call's announcement: chime, then a real Japanese voice (and the visitor's language), rendered ahead."""

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


def assert_spoken_sentence(body: bytes) -> None:
    """A WAV of one spoken call: a few seconds long, loud, and voiced most of the time."""
    samples, rate = wav_samples(body)
    duration = len(samples) / rate
    assert 2.0 <= duration <= 9.0, f"{duration:.2f} s is not the length of a spoken call"
    assert float(np.sqrt(np.mean(samples**2))) > 0.05, "too quiet to be speech"
    frames = audio.frame_rms(samples, rate, 0.05)
    assert (frames > frames.max() * 10 ** (-30 / 20)).mean() > 0.5, "mostly silence"


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

    # A recall is announced again, with the same (cached) clips.
    await staff.counter("2", "recall")
    status, again = await visitor.get(f"/api/offices/main/announcement?number={number}&counter=2")
    assert status == 200 and again["audio"] == answer["audio"]
    assert speech.render_counts == rendered
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
