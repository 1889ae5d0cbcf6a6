"""The archive on a real server process: it survives a SIGKILL of the server and its Valkey, and the
report endpoints, ``madoguchi report`` and ``madoguchi export`` read it."""

from __future__ import annotations

import csv
import io
import os
import signal
from pathlib import Path

import aiohttp
import openpyxl
import pytest

from queue_server.clock import Clock

from .conftest import Api
from .servers import ServerProcess, madoguchi, write_config

pytestmark = pytest.mark.slow

REASON = "鈴木一郎さん 本人確認書類なし"


async def _post(session: aiohttp.ClientSession, url: str, csrf: str, body: dict | None = None) -> dict:
    async with session.post(url, json=body or {}, headers={"X-CSRF-Token": csrf}) as r:
        assert r.status in (200, 201), await r.text()
        return await r.json()


async def test_archived_visits_survive_sigkill_and_the_report_and_export_read_them(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    for name, role in (("staff", "contractor"), ("boss", "supervisor")):
        added = madoguchi("add-user", name, "--role", role, "--config", str(config), "--password-stdin",
                          stdin="test-password-1\n")
        assert added.returncode == 0, added.stderr
    server = ServerProcess(config)
    await server.start()
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            base = f"{server.url}/api/offices/main"
            numbers = [(await _post(session, f"{base}/tickets", "", {"procedure": "application"}))["ticket"]["number"]
                       for _ in range(4)]
            async with session.post(f"{server.url}/api/session",
                                    json={"username": "staff", "password": "test-password-1"}) as r:
                csrf = (await r.json())["csrf_token"]
            counter = f"{base}/counters/1"
            await _post(session, f"{counter}/open", csrf)
            for action in ("call-next", "start", "finish"):  # A001 done
                await _post(session, f"{counter}/{action}", csrf)
            for action in ("call-next", "start"):  # A002 handed over to city staff: still waiting, not archived
                await _post(session, f"{counter}/{action}", csrf)
            await _post(session, f"{counter}/hand-over", csrf, {"to": "review", "reason": REASON, "category": "documents"})
            for action in ("call-next", "recall", "recall", "no-show"):  # A003 no-show
                await _post(session, f"{counter}/{action}", csrf)
            await _post(session, f"{base}/tickets/{numbers[3]}/cancel", csrf)  # A004 cancelled

            valkey_pid = int((tmp_path / "data" / "valkey.pid").read_text())
            server.kill()
            os.kill(valkey_pid, signal.SIGKILL)
            await server.start()

            today = Clock("Asia/Tokyo").day()
            day = f"{today[:4]}-{today[4:6]}-{today[6:]}"
        async with aiohttp.ClientSession(base_url=server.url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            boss = Api(http)
            await boss.sign_in("boss")
            status, report = await boss.get(f"/api/reports/daily?day={day}&office=main")
            assert status == 200, report
            summary = dict(zip(report["tables"][0]["headers"], report["tables"][0]["rows"][0], strict=False))
            assert (summary["来庁者数"], summary["対応完了"], summary["不在"], summary["取消"]) == (3, 1, 1, 1)

        # The command line reads the running server's Valkey.
        xlsx = tmp_path / "day.xlsx"
        done = madoguchi("report", "--day", day, "--office", "main", "-o", str(xlsx), "--config", str(config))
        assert done.returncode == 0, done.stderr
        sheet = openpyxl.load_workbook(xlsx)["概要"]
        assert sheet.cell(5, 2).value == 3
        exported = tmp_path / "visits.csv"
        month = day[:7]
        done = madoguchi("export", "--from", month, "--to", month, "-o", str(exported), "--config", str(config))
        assert done.returncode == 0, done.stderr
        text = exported.read_text(encoding="utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert sorted((r["number"], r["state"]) for r in rows) == [
            (numbers[0], "done"), (numbers[2], "no_show"), (numbers[3], "cancelled")]
        assert REASON not in text and "鈴木" not in text
    finally:
        await server.stop()
