"""The QR code on a ticket must open on a visitor's phone: the server says so when it can't."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from queue_server.config import ServerSettings, load_config

from .servers import ServerProcess, write_config


@pytest.mark.parametrize(("host", "public_url", "warns"), [
    ("127.0.0.1", "", True), ("localhost", "", True), ("::1", "", True), ("127.0.1.1", "", True),
    ("127.0.0.1", "https://madoguchi.city.example.jp", False),
    ("0.0.0.0", "", False), ("192.168.10.5", "", False), ("madoguchi.local", "", False),
])
def test_only_a_loopback_host_without_public_url_gives_phones_an_unreachable_qr_code(
        host: str, public_url: str, warns: bool) -> None:
    warning = ServerSettings(host=host, port=8080, public_url=public_url).qr_address_warning()
    assert (warning is not None) == warns
    if warns:
        assert "server.public_url" in warning and f"http://{host}:8080/status/" in warning


async def startup_output(config: Path) -> str:
    """What ``madoguchi serve`` printed and logged before it answered its first request."""
    server = ServerProcess(config)
    await server.start()
    try:
        # start() returns once the server answers; its startup output was written before that.
        return (config.parent / f"server-{server.port}.log").read_text(encoding="utf-8")
    finally:
        await server.stop()


async def test_serve_warns_at_start_on_the_terminal_and_in_the_log(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert load_config(config).server.host == "127.0.0.1"
    output = await startup_output(config)
    printed = [line for line in output.splitlines() if line.startswith("  warning: server.public_url is not set")]
    logged = [line for line in output.splitlines() if "WARNING queue_server.cli: server.public_url is not set" in line]
    assert printed and logged, output


async def test_no_warning_once_public_url_is_set(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text(encoding="utf-8").replace(
        "[server]\n", '[server]\npublic_url = "https://madoguchi.city.example.jp"\n', 1), encoding="utf-8")
    assert dataclasses.asdict(load_config(config).server)["public_url"] == "https://madoguchi.city.example.jp"
    output = await startup_output(config)
    assert "madoguchi is running" in output and "public_url" not in output, output
