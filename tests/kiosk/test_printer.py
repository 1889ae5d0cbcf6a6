"""The ticket printer: what the ESC/POS bytes print, how the settings are checked, how failures read.

The bytes are read back with a small ESC/POS reader written from the command reference, not
from python-escpos, so a wrong command or encoding shows up as wrong text. Sending goes
through python-escpos's real Network class to a real TCP server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import socket
from collections.abc import AsyncIterator

import pytest

from ticket_kiosk.printer import (
    PrinterConfig,
    PrinterConfigError,
    PrinterError,
    TicketPrint,
    TicketPrinter,
    render_ticket,
)

from ..waiting import PATIENCE_S

ESC, GS, FS = 0x1B, 0x1D, 0x1C
KANJI_ON, KANJI_OFF, SHIFT_JIS = b"\x1c&", b"\x1c.", b"\x1cC\x01"
PAPER_STATUS_QUERY = b"\x10\x04\x04"  # DLE EOT 4
SINGLE_BYTE_PAGES = {0: "cp437", 2: "cp850", 13: "cp857", 16: "cp1252", 19: "cp858"}  # ESC t n

TICKET = TicketPrint(
    office_name="瀬戸市役所 個人番号カード交付窓口",
    number="A123",
    procedure_name="カード交付",
    issued_at=dt.datetime(2026, 4, 1, 9, 5),
    status_url="https://madoguchi.example.jp/s/honcho/A123?k=Zx81",
    ahead=5,
    wait_minutes=25,
)


def read_ticket(data: bytes) -> list[tuple[str, int]]:
    """The printed lines as (text, GS ! size byte), with "<QR data>" and "<CUT>" where those are printed.

    Fails on any byte sequence it does not know, and on kanji outside Shift_JIS kanji mode.
    """
    lines: list[tuple[str, int]] = []
    text, size, line_size, page = "", 0, 0, 0
    shift_jis = kanji = False
    qr_data = b""
    i = 0
    while i < len(data):
        b = data[i]
        if kanji:
            if data[i:i + 2] == KANJI_OFF:
                kanji, i = False, i + 2
                continue
            assert b >= 0x81, f"single byte {b:#x} inside kanji mode at {i}"
            text, line_size = text + data[i:i + 2].decode("cp932"), line_size if text else size
            i += 2
        elif b == 0x0A:
            lines.append((text, line_size))
            text, i = "", i + 1
        elif b == ESC and data[i + 1] == ord("@"):
            size, page, shift_jis, i = 0, 0, False, i + 2
        elif b == ESC and chr(data[i + 1]) in "tEa-":
            if data[i + 1] == ord("t"):
                page = data[i + 2]
            i += 3
        elif b == ESC and data[i + 1] == ord("d"):
            i += 3  # print and feed: blank paper, no text
        elif b == GS and data[i + 1] == ord("!"):
            size, i = data[i + 2], i + 3
        elif b == GS and data[i + 1:i + 3] == b"V\x00":
            lines.append(("<CUT>", 0))
            i += 3
        elif b == GS and data[i + 1:i + 3] == b"(k":
            length = data[i + 3] + 256 * data[i + 4]
            body = data[i + 5:i + 5 + length]
            if body.startswith(b"1P0"):
                qr_data = body[3:]
            elif body.startswith(b"1Q0"):
                lines.append((f"<QR {qr_data.decode()}>", size))
            i += 5 + length
        elif b == FS and data[i + 1:i + 3] == b"C\x01":
            shift_jis, i = True, i + 3
        elif b == FS and data[i + 1] == ord("&"):
            assert shift_jis, "kanji mode entered before FS C 1 selected Shift_JIS"
            kanji, i = True, i + 2
        elif 0x20 <= b < 0x7F or b >= 0x80:
            char = bytes([b]).decode(SINGLE_BYTE_PAGES[page])
            text, line_size = text + char, line_size if text else size
            i += 1
        else:
            raise AssertionError(f"unknown ESC/POS byte {b:#x} at {i}: {data[i:i + 8]!r}")
    assert not text, f"text left unprinted at the end: {text!r}"
    return lines


def texts(data: bytes) -> list[str]:
    """The non-empty printed lines."""
    return [text for text, _ in read_ticket(data) if text]


# --- what a ticket prints -----------------------------------------------------------------


def test_a_booked_ticket_prints_its_slot_under_the_procedure() -> None:
    lines = texts(render_ticket(dataclasses.replace(TICKET, number="701", booked_slot="09:00")))
    assert lines[2:5] == ["701", "カード交付", "予約 09:00"]


def test_ticket_reads_top_to_bottom() -> None:
    ticket = dataclasses.replace(TICKET, procedure_name_local="Entrega do cartão", lang="pt")
    assert texts(render_ticket(ticket)) == [
        "瀬戸市役所 個人番号カード交付窓口",
        "受付番号",
        "A123",
        "カード交付",
        "Entrega do cartão",
        "発券 2026年4月1日 09:05",
        "お待ちの方 5 人・目安 約 25 分",
        "<QR https://madoguchi.example.jp/s/honcho/A123?k=Zx81>",
        "QRコードで呼出状況を確認できます",
        "<CUT>",
    ]


def test_number_is_printed_four_times_normal_size_and_the_rest_normal() -> None:
    sizes = dict(read_ticket(render_ticket(TICKET)))
    assert sizes["A123"] == 0x33
    assert sizes["受付番号"] == 0x00
    assert sizes["QRコードで呼出状況を確認できます"] == 0x00


def test_japanese_is_sent_as_cp932_inside_kanji_mode_after_selecting_shift_jis() -> None:
    data = render_ticket(TICKET)
    assert data.startswith(b"\x1b@" + SHIFT_JIS)
    assert KANJI_ON + "カード交付".encode("cp932") + KANJI_OFF in data
    # python-escpos on its own would have sent these: a Japanese printer prints them as garbage.
    assert "交付".encode("gb2312") not in data
    assert "交付".encode("gb18030") not in data


def test_qr_code_is_a_native_gs_k_symbol_holding_the_status_url() -> None:
    data = render_ticket(TICKET)
    url = TICKET.status_url.encode()
    store = b"\x1d(k" + bytes([(len(url) + 3) % 256, (len(url) + 3) // 256]) + b"1P0" + url
    assert store in data
    assert data.index(store) < data.index(b"\x1d(k\x03\x001Q0")  # stored, then printed


def test_ticket_ends_with_a_full_cut() -> None:
    assert render_ticket(TICKET).endswith(b"\x1dV\x00")


@pytest.mark.parametrize(("lang", "local"), [
    ("ko", "카드 수령"),          # Hangul: not in cp932
    ("zh-Hans", "领取卡片"),      # 领 is simplified only
    ("ja", "Card pickup"),        # a Japanese visitor needs no second name
])
def test_local_name_is_left_out_when_not_printable_or_not_needed(lang: str, local: str) -> None:
    with_local = dataclasses.replace(TICKET, lang=lang, procedure_name_local=local)
    without = dataclasses.replace(TICKET, lang=lang, procedure_name_local=None)
    assert render_ticket(with_local) == render_ticket(without)


@pytest.mark.parametrize(("lang", "local"), [
    ("en", "Card pickup"),
    ("zh-Hant", "領取證明書"),  # traditional characters that JIS also has
    ("pt", "Entrega do cartão"),  # ã through a single-byte code page
])
def test_local_name_is_printed_under_the_japanese_one_when_printable(lang: str, local: str) -> None:
    lines = texts(render_ticket(dataclasses.replace(TICKET, lang=lang, procedure_name_local=local)))
    assert lines[lines.index("カード交付") + 1] == local


def test_letters_outside_cp932_need_a_code_page_the_printer_profile_lists() -> None:
    vietnamese = dataclasses.replace(TICKET, lang="vi", procedure_name_local="Nhận thẻ")
    assert b"Nh\x1bt\x1e" in render_ticket(vietnamese)  # then ESC t 30: TCVN-3, listed in the default profile
    # The "simple" profile has only CP437: no ậ, ẻ, so the line is left out rather than printed as "?".
    without = dataclasses.replace(vietnamese, procedure_name_local=None)
    assert render_ticket(vietnamese, profile="simple") == render_ticket(without, profile="simple")


@pytest.mark.parametrize(("ahead", "wait", "line"), [
    (5, 25, "お待ちの方 5 人・目安 約 25 分"),
    (0, None, "お待ちの方 0 人"),
    (None, 40, "目安 約 40 分"),
])
def test_people_ahead_and_wait_show_what_is_known(ahead: int | None, wait: int | None, line: str) -> None:
    lines = texts(render_ticket(dataclasses.replace(TICKET, ahead=ahead, wait_minutes=wait)))
    assert lines[lines.index("発券 2026年4月1日 09:05") + 1] == line


def test_no_wait_line_when_nothing_is_known() -> None:
    lines = texts(render_ticket(dataclasses.replace(TICKET, ahead=None, wait_minutes=None)))
    assert not any("お待ち" in line or "目安" in line for line in lines)


def test_control_characters_in_names_never_reach_the_printer() -> None:
    data = render_ticket(dataclasses.replace(TICKET, office_name="本庁\x1b@\x1dV\x00\n窓口"))
    assert data.count(b"\x1b@") == 1 and data.count(b"\x1dV") == 1
    assert "本庁 @ V  窓口" in texts(data)  # the letters of the commands, harmless as text


def test_halfwidth_katakana_is_printed_full_width_in_kanji_mode() -> None:
    data = render_ticket(dataclasses.replace(TICKET, procedure_name="ｶｰﾄﾞ交付"))
    assert KANJI_ON + "カード交付".encode("cp932") + KANJI_OFF in data


def test_character_without_glyph_prints_as_geta() -> None:
    assert "瀬戸市〓窓口" in texts(render_ticket(dataclasses.replace(TICKET, office_name="瀬戸市领窓口")))


@pytest.mark.parametrize(("change", "field"), [
    ({"number": "山田"}, "number"),
    ({"number": ""}, "number"),
    ({"ahead": -1}, "ahead"),
    ({"wait_minutes": 2.5}, "wait_minutes"),
    ({"status_url": "javascript:alert(1)"}, "status_url"),
])
def test_ticket_refuses_values_that_would_mislead(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(TICKET, **change)


# --- settings -------------------------------------------------------------------------------


def test_no_printer_table_means_printing_is_off() -> None:
    assert PrinterConfig.from_mapping({}).kind == "none"


def test_network_settings_are_read() -> None:
    config = PrinterConfig.from_mapping({"kind": "network", "host": "192.0.2.10", "timeout": 3})
    assert (config.host, config.port, config.timeout, config.target) == ("192.0.2.10", 9100, 3.0, "192.0.2.10:9100")


def test_usb_ids_may_be_written_as_lsusb_shows_them() -> None:
    config = PrinterConfig.from_mapping({"kind": "usb", "vendor_id": "04b8", "product_id": "0x0E28"})
    assert (config.vendor_id, config.product_id, config.target) == (0x04B8, 0x0E28, "USB 04b8:0e28")


def test_unknown_kind_names_the_key_and_the_allowed_values() -> None:
    with pytest.raises(PrinterConfigError) as error:
        PrinterConfig.from_mapping({"kind": "lan", "host": "192.0.2.10"})
    assert error.value.problems == ["printer.kind: must be one of 'none', 'network', 'usb', 'serial', got 'lan'"]
    assert isinstance(error.value, ValueError)


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(PrinterConfigError) as error:
        PrinterConfig.from_mapping(
            {"kind": "network", "port": 0, "timeout": "5", "device": "/dev/ttyUSB0", "colour": 1})
    problems = "\n".join(error.value.problems)
    assert "printer.colour: unknown key; allowed: baudrate, check_paper, device, host, in_ep" in problems
    assert 'printer.device: only used when kind = "serial"' in problems
    assert 'printer.host: is required when kind = "network"' in problems
    assert "printer.port: must be 1–65535" in problems
    assert "printer.timeout: must be a number of seconds, got str '5'" in problems
    assert len(error.value.problems) == 5


@pytest.mark.parametrize(("mapping", "message"), [
    ({"host": "192.0.2.10"}, "printer.kind: is required; one of 'none', 'network', 'usb', 'serial'"),
    ({"kind": "usb", "vendor_id": "04b8"}, 'printer.product_id: is required when kind = "usb"'),
    ({"kind": "serial", "device": "COM3", "baudrate": 9601}, "printer.baudrate: must be one of 1200, 2400"),
    ({"kind": "network", "host": "p", "profile": "TM-X"}, "printer.profile: must be a python-escpos printer profile"),
    ({"kind": "network", "host": "p", "check_paper": "yes"}, "printer.check_paper: must be true or false"),
])
def test_bad_settings_name_the_key_and_what_is_allowed(mapping: dict[str, object], message: str) -> None:
    with pytest.raises(PrinterConfigError, match=message.replace("(", r"\(")):
        PrinterConfig.from_mapping(mapping)


def test_switching_printing_off_keeps_the_other_settings_valid() -> None:
    assert PrinterConfig.from_mapping({"kind": "none", "host": "192.0.2.10", "device": "COM3"}).kind == "none"


def test_settings_made_in_code_are_checked_too() -> None:
    with pytest.raises(PrinterConfigError, match="printer.host: is required"):
        PrinterConfig(kind="network")


# --- sending --------------------------------------------------------------------------------


class RecordingPrinter:
    """A TCP server on 127.0.0.1 that records each connection's bytes, like a raw port-9100 printer.

    ``status`` is what it answers to a paper-status query (DLE EOT 4); "silent" never answers;
    None means the client is not expected to ask.
    """

    def __init__(self, status: bytes | str | None = None) -> None:
        self.status = status
        self.jobs: asyncio.Queue[bytes] = asyncio.Queue()
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Record one connection until the client closes it."""
        received = b""
        if self.status is not None:
            received = await reader.readexactly(len(PAPER_STATUS_QUERY))
            if isinstance(self.status, bytes):
                writer.write(self.status)
                await writer.drain()
        received += await reader.read()
        writer.close()
        await self.jobs.put(received)

    async def next_job(self) -> bytes:
        """The bytes of the next connection, once it has closed."""
        return await asyncio.wait_for(self.jobs.get(), PATIENCE_S)

    def printer(self, *, timeout: float = PATIENCE_S, check_paper: bool = False) -> TicketPrinter:
        """A network TicketPrinter pointed at this server."""
        return TicketPrinter(PrinterConfig(kind="network", host="127.0.0.1", port=self.port,
                                           timeout=timeout, check_paper=check_paper))


async def start(status: bytes | str | None = None) -> tuple[RecordingPrinter, asyncio.Server]:
    """A RecordingPrinter listening on a free port."""
    recorder = RecordingPrinter(status)
    server = await asyncio.start_server(recorder.handle, "127.0.0.1", 0)
    recorder.port = server.sockets[0].getsockname()[1]
    return recorder, server


@pytest.fixture
async def recorder() -> AsyncIterator[RecordingPrinter]:
    """A RecordingPrinter that does not answer status queries."""
    recorder, server = await start()
    async with server:
        yield recorder


async def test_network_printer_receives_exactly_the_rendered_ticket(recorder: RecordingPrinter) -> None:
    assert await recorder.printer().print_ticket(TICKET) is True
    assert await recorder.next_job() == render_ticket(TICKET)


async def test_tickets_asked_at_once_print_one_after_another_in_order(recorder: RecordingPrinter) -> None:
    tickets = [dataclasses.replace(TICKET, number=f"A{n}") for n in (124, 125, 126)]
    printer = recorder.printer()
    assert await asyncio.gather(*(printer.print_ticket(t) for t in tickets)) == [True] * 3
    assert [await recorder.next_job() for _ in tickets] == [render_ticket(t) for t in tickets]


async def test_refused_connection_tells_staff_which_printer_cannot_be_reached() -> None:
    with socket.socket() as bound_not_listening:
        bound_not_listening.bind(("127.0.0.1", 0))
        port = bound_not_listening.getsockname()[1]
        printer = TicketPrinter(PrinterConfig(kind="network", host="127.0.0.1", port=port, timeout=2))
        with pytest.raises(PrinterError) as error:
            await printer.print_ticket(TICKET)
    assert error.value.reason == "unreachable"
    assert str(error.value).startswith(f"プリンターに接続できません（127.0.0.1:{port}）")
    assert "refused" in error.value.detail.lower()


async def test_printing_off_prints_nothing_and_says_so() -> None:
    assert await TicketPrinter(PrinterConfig()).print_ticket(TICKET) is False


async def test_paper_out_is_reported_and_nothing_is_printed() -> None:
    recorder, server = await start(status=b"\x72")  # paper-end sensor bits 5 and 6 set
    async with server:
        with pytest.raises(PrinterError) as error:
            await recorder.printer(check_paper=True).print_ticket(TICKET)
        assert await recorder.next_job() == PAPER_STATUS_QUERY
    assert error.value.reason == "paper_out"
    assert "用紙がありません" in error.value.message


async def test_with_paper_the_ticket_follows_the_status_query() -> None:
    recorder, server = await start(status=b"\x12")  # only the fixed bits: paper present
    async with server:
        assert await recorder.printer(check_paper=True).print_ticket(TICKET) is True
        assert await recorder.next_job() == PAPER_STATUS_QUERY + render_ticket(TICKET)


async def test_a_printer_that_never_answers_times_out() -> None:
    recorder, server = await start(status="silent")
    async with server:
        with pytest.raises(PrinterError) as error:
            # Without its own timeout the job would wait for an answer for ever: wait_for's would fire.
            await asyncio.wait_for(recorder.printer(check_paper=True, timeout=0.3).print_ticket(TICKET), PATIENCE_S)
        await recorder.next_job()
    assert error.value.reason == "timeout"
    assert error.value.message.startswith(f"プリンターが応答しません（127.0.0.1:{recorder.port}）")


async def test_missing_usb_printer_is_reported_with_its_ids() -> None:
    printer = TicketPrinter(PrinterConfig(kind="usb", vendor_id=0x04B8, product_id=0x0E28, timeout=1))
    with pytest.raises(PrinterError) as error:
        await printer.print_ticket(TICKET)
    # Without pyusb installed the driver is missing; with it, there is no such device here.
    assert error.value.reason in ("driver_missing", "unreachable")
    assert "USB 04b8:0e28" in error.value.message


async def test_missing_serial_printer_is_reported_with_its_device() -> None:
    printer = TicketPrinter(PrinterConfig(kind="serial", device="/dev/madoguchi-no-such-printer", timeout=1))
    with pytest.raises(PrinterError) as error:
        await printer.print_ticket(TICKET)
    assert error.value.reason in ("driver_missing", "unreachable")
    assert "/dev/madoguchi-no-such-printer" in error.value.message
