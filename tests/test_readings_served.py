"""A fresh server's やさしい日本語 pages carry the right readings, with Open JTalk kept out of its process.

The readings come from ``readings.json`` (catalog texts) and from a child process (the office's own
names); an announcement is rendered by the speech worker process. The server process itself never
maps Open JTalk's or Sudachi's dictionary (ARCHITECTURE.md, Pages), nor numba's compiler (llvmlite: only
the estimates worker compiles the estimator's loop): that is what keeps it small.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import aiohttp
import pytest

from .servers import ServerProcess, add_staff, write_config

pytestmark = pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads the server's mappings from /proc")

DICTIONARIES = re.compile(r"pyopenjtalk/dictionary/|sudachidict|libllvmlite")
RUBY = re.compile(r"<ruby>([^<]*)<rt>([^<]*)</rt></ruby>")


def dictionaries_mapped(pid: int) -> list[str]:
    """The Open JTalk and Sudachi dictionary files and llvmlite's library that the process ``pid`` has mapped."""
    return sorted({line.split()[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines()
                   if DICTIONARIES.search(line)})


async def test_the_easy_japanese_pages_carry_the_right_readings_and_the_server_maps_no_dictionary(
        tmp_path: Path) -> None:
    config = write_config(tmp_path)
    add_staff(config)
    server = ServerProcess(config)
    await server.start()
    assert server.process is not None
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with session.get(f"{server.url}/kiosk/main?lang=ja-easy") as r:
                assert r.status == 200
                page = await r.text()
            embedded = re.search(r'<script id="page-catalog-html" type="application/json">(.*?)</script>', page, re.S)
            assert embedded is not None
            catalog = json.loads(html.unescape(embedded[1]))["ja-easy"]
            # This office's own names (not in readings.json: analysed by the child at startup) ...
            names = json.loads(html.unescape(re.search(r'<script id="page-data" type="application/json">(.*?)</script>',
                                                       page, re.S)[1]))["names_html"]["main"]
            assert RUBY.findall(names["procedures"]["pickup"]["name"]["ja-easy"]) == [("交付", "こうふ")]
            assert RUBY.findall(names["procedures"]["application"]["name"]["ja-easy"]) == [
                ("交付", "こうふ"), ("申請", "しんせい"), ("受付", "うけつけ")]
            assert ("窓口", "まどぐち") in RUBY.findall(names["counters"]["1"]["ja-easy"])
            # ... and the catalog's, from readings.json.
            shown = {pair for text in catalog.values() for pair in RUBY.findall(text)}
            assert {("番号", "ばんごう"), ("人", "にん"), ("人", "ひと"), ("分", "ふん"), ("時間", "じかん")} <= shown, \
                sorted(shown)
            # A text the template fills in (t(key, minutes=…)|phrases) is shown filled in.
            async with session.get(f"{server.url}/congestion/main?lang=ja-easy") as r:
                assert r.status == 200
                assert re.search(r'<span class="phrases">\d+ <wbr>ぷんより ', await r.text())

            # An announcement is rendered too, by the speech worker.
            async with session.post(f"{server.url}/api/offices/main/tickets", json={"procedure": "pickup"}) as r:
                number = (await r.json())["ticket"]["number"]
            async with session.post(f"{server.url}/api/session",
                                    json={"username": "staff", "password": "test-password-1"}) as r:
                csrf = {"X-CSRF-Token": (await r.json())["csrf_token"]}
            for action in ("open", "call-next"):
                async with session.post(f"{server.url}/api/offices/main/counters/2/{action}", headers=csrf) as r:
                    assert r.status == 200, await r.text()
            async with session.get(f"{server.url}/api/offices/main/announcement",
                                   params={"number": number, "counter": "2"}) as r:
                assert r.status == 200, await r.text()
        assert dictionaries_mapped(server.process.pid) == []
    finally:
        await server.stop()
