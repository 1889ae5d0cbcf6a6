"""The receipt printer for numbered tickets (番号札): ESC/POS over raw TCP (port 9100), USB or serial.

``render_ticket`` turns a :class:`TicketPrint` into ESC/POS bytes without any I/O;
:class:`TicketPrinter` sends them from a worker thread under a deadline and turns every
failure into a :class:`PrinterError` whose message tells staff, in Japanese first, what to check.

Japanese is printed in the printer's own kanji mode in Shift_JIS (``FS C 1``, then
``FS &`` … ``FS .`` around cp932 bytes). python-escpos's automatic encoding sends kanji as
GB18030, which a Japanese printer prints as garbage, so no CJK character ever reaches
``Escpos.text`` here: :func:`write_text` splits every string into ASCII, kanji-mode and
single-byte code-page runs. A ticket carries numbers only, never a visitor's name.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import re
import socket
import threading
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final, Literal, get_args

from escpos.capabilities import CAPABILITIES
from escpos.constants import QR_ECLEVEL_M
from escpos.escpos import Escpos
from escpos.exceptions import Error as EscposError
from escpos.magicencode import Encoder
from escpos.printer import Dummy, Network, Serial, Usb

__all__ = [
    "PrinterConfig",
    "PrinterConfigError",
    "PrinterError",
    "TicketPrint",
    "TicketPrinter",
    "can_print",
    "render_ticket",
    "write_text",
]

_log: Final = logging.getLogger(__name__)

SELECT_SHIFT_JIS: Final = b"\x1cC\x01"  # FS C 1: two-byte codes are Shift_JIS, not the JIS default
KANJI_ON: Final = b"\x1c&"  # FS &
KANJI_OFF: Final = b"\x1c."  # FS .
GETA: Final = "〓"  # what Japanese print uses for a character there is no glyph for

PrinterKind = Literal["none", "network", "usb", "serial"]
PrinterFailure = Literal["unreachable", "timeout", "disconnected", "paper_out", "driver_missing", "busy"]
_RunKind = Literal["ascii", "kanji", "single", "missing"]

_HALFWIDTH_KANA: Final = re.compile("[\uff61-\uff9f]+")
# Characters cp932 lacks, written where Japanese text means one it has (― HORIZONTAL BAR, a space).
_CP932_FIXES: Final = str.maketrans({"\u2014": "\u2015", "\u00a0": " "})


# --- text -------------------------------------------------------------------------------


def _clean(text: str) -> str:
    """``text`` without control or format characters, half-width katakana made full-width."""
    # Control bytes in an office or procedure name would be executed by the printer, and
    # half-width katakana is a single-byte code whose glyph depends on the selected code page.
    text = _HALFWIDTH_KANA.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text.translate(_CP932_FIXES))
    return "".join(" " if unicodedata.category(c) == "Cc" else c for c in text if unicodedata.category(c) != "Cf")


def _run_kind(char: str, encoder: Encoder) -> _RunKind:
    """How ``char`` can be printed: as ASCII, in kanji mode, through a single-byte code page, or not at all."""
    if char.isascii():
        return "ascii"
    # Private-use characters encode to cp932 user-defined codes the printer has no glyphs for.
    if unicodedata.category(char) not in ("Co", "Cs"):
        try:
            if len(char.encode("cp932")) == 2:
                return "kanji"
        except UnicodeEncodeError:
            pass
    if any(encoder.can_encode(page, char) for page in encoder.codepages):
        return "single"
    return "missing"


def _runs(text: str, encoder: Encoder) -> Iterator[tuple[_RunKind, str]]:
    """``text`` cleaned and cut into maximal runs of one kind."""
    for kind, chars in itertools.groupby(_clean(text), key=lambda c: _run_kind(c, encoder)):
        yield kind, "".join(chars)


def can_print(printer: Escpos, text: str) -> bool:
    """Whether every character of ``text`` has a glyph in kanji mode or one of the printer profile's code pages."""
    return all(kind != "missing" for kind, _ in _runs(text, printer.magic.encoder))


def write_text(printer: Escpos, text: str) -> None:
    """Print ``text`` on a printer already switched to Shift_JIS (``SELECT_SHIFT_JIS``).

    ASCII goes as is, Japanese inside ``FS &`` … ``FS .`` as cp932, other letters (é, ã)
    through python-escpos's code-page switching, and a character with no glyph as 〓.
    """
    for kind, run in _runs(text, printer.magic.encoder):
        if kind == "kanji":
            printer._raw(KANJI_ON + run.encode("cp932") + KANJI_OFF)
        elif kind == "missing":
            printer._raw(KANJI_ON + (GETA * len(run)).encode("cp932") + KANJI_OFF)
        else:
            # No CJK is left in these runs, so python-escpos's GB18030 shortcut never fires.
            printer.text(run)


# --- the ticket ---------------------------------------------------------------------------

_NUMBER: Final = re.compile(r"^[A-Za-z0-9-]{1,8}$")


@dataclass(frozen=True, kw_only=True, slots=True)
class TicketPrint:
    """What one printed ticket shows. Numbers only: there is deliberately no field for a name.

    ``issued_at`` is printed as given, so pass the office's local time; ``lang`` is the
    visitor's language, and ``procedure_name_local`` (the procedure in that language) is
    printed under the Japanese name when ``lang`` is not Japanese and the printer can print it.
    ``booked_slot`` (``HH:MM``) marks a booked visitor checked in on time: 「予約 09:00」.
    """

    office_name: str
    number: str
    procedure_name: str
    issued_at: dt.datetime
    status_url: str
    procedure_name_local: str | None = None
    ahead: int | None = None
    wait_minutes: int | None = None
    lang: str = "ja"
    booked_slot: str | None = None

    def __post_init__(self) -> None:
        """Reject values that would print a misleading ticket."""
        if not _NUMBER.match(self.number):
            raise ValueError(f"number must be 1–8 ASCII letters, digits or '-', got {self.number!r}")
        if not self.status_url.startswith(("https://", "http://")):
            raise ValueError(f"status_url must be an http(s) URL, got {self.status_url!r}")
        for name in ("ahead", "wait_minutes"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be a whole number ≥ 0 or None, got {value!r}")


def _line(printer: Escpos, text: str) -> None:
    """One line of text."""
    write_text(printer, text)
    printer.ln()


def _size(printer: Escpos, width: int, height: int) -> None:
    """Character size for everything that follows."""
    # GS ! (custom_size) and not ESC !: ESC ! leaves kanji at normal size on Japanese printers.
    printer.set(custom_size=True, width=width, height=height)


def _wait_line(ahead: int | None, wait_minutes: int | None) -> str:
    """「お待ちの方 5 人・目安 約 25 分」, or the half that is known, or empty."""
    parts = []
    if ahead is not None:
        parts.append(f"お待ちの方 {ahead} 人")
    if wait_minutes is not None:
        parts.append(f"目安 約 {wait_minutes} 分")
    return "・".join(parts)


def render_ticket(ticket: TicketPrint, *, profile: str | None = None) -> bytes:
    """The ESC/POS bytes of one ticket, ending with a cut; ``profile`` is a python-escpos printer profile name."""
    p = Dummy(profile=profile)
    p.hw("INIT")  # ESC @: whatever the last job left behind (kanji mode, sizes) is cleared
    p._raw(SELECT_SHIFT_JIS)
    p.set(align="center", bold=True)
    _size(p, 1, 1)
    _line(p, ticket.office_name)
    p.set(bold=False)
    p.ln()
    _line(p, "受付番号")
    p.set(bold=True)
    _size(p, 4, 4)
    _line(p, ticket.number)
    _size(p, 1, 2)
    _line(p, ticket.procedure_name)
    _size(p, 1, 1)
    p.set(bold=False)
    local = ticket.procedure_name_local
    if (local and local != ticket.procedure_name and not ticket.lang.lower().startswith("ja")
            and can_print(p, local)):
        _line(p, local)
    if ticket.booked_slot:
        p.set(bold=True)
        _line(p, f"予約 {ticket.booked_slot}")
        p.set(bold=False)
    p.ln()
    at = ticket.issued_at
    _line(p, f"発券 {at.year}年{at.month}月{at.day}日 {at:%H:%M}")
    if wait := _wait_line(ticket.ahead, ticket.wait_minutes):
        _line(p, wait)
    p.ln()
    p.qr(ticket.status_url, ec=QR_ECLEVEL_M, size=6, native=True)  # GS ( k: the printer draws it
    p.ln()
    _line(p, "QRコードで呼出状況を確認できます")
    p.cut()
    return p.output


# --- configuration ----------------------------------------------------------------------

_KINDS: Final = get_args(PrinterKind)
_COMMON_KEYS: Final = frozenset({"kind", "timeout", "profile", "check_paper"})
_KIND_KEYS: Final[Mapping[str, frozenset[str]]] = {
    "network": frozenset({"host", "port"}),
    "usb": frozenset({"vendor_id", "product_id", "in_ep", "out_ep"}),
    "serial": frozenset({"device", "baudrate"}),
}
_BAUDRATES: Final = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
_NONE: Final = type(None)
# What each key holds, as TOML types and in words for the error message.
_TYPES: Final[Mapping[str, tuple[tuple[type, ...], str]]] = {
    "kind": ((str,), "a string"),
    "host": ((str,), "a string"),
    "port": ((int,), "a whole number"),
    "timeout": ((int, float), "a number of seconds"),
    "vendor_id": ((int, _NONE), 'a USB id like 0x04b8 or "04b8"'),
    "product_id": ((int, _NONE), 'a USB id like 0x0e28 or "0e28"'),
    "in_ep": ((int,), "an endpoint number like 0x82"),
    "out_ep": ((int,), "an endpoint number like 0x01"),
    "device": ((str,), "a string"),
    "baudrate": ((int,), "a whole number"),
    "profile": ((str, _NONE), "a string"),
    "check_paper": ((bool,), "true or false"),
}


class PrinterConfigError(ValueError):
    """The ``[printer]`` settings are wrong; ``problems`` names each bad key and what is allowed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _problems(values: Mapping[str, Any]) -> list[str]:
    """Every wrong value among the settings in ``values`` (all fields present), as 'printer.key: why'."""
    problems: list[str] = []
    ok: dict[str, Any] = {}
    for key, (kinds, expected) in _TYPES.items():
        value = values[key]
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            problems.append(f"printer.{key}: must be {expected}, got {type(value).__name__} {value!r}")
        else:
            ok[key] = value

    def bad(key: str, message: str) -> None:
        if key in ok:
            problems.append(f"printer.{key}: {message}, got {ok[key]!r}")

    kind = ok.get("kind")
    if kind is not None and kind not in _KINDS:
        bad("kind", f"must be one of {', '.join(map(repr, _KINDS))}")
    if "timeout" in ok and not 0 < ok["timeout"] <= 120:
        bad("timeout", "must be more than 0 and at most 120 seconds")
    if ok.get("profile") is not None and ok["profile"] not in CAPABILITIES["profiles"]:
        bad("profile", f"must be a python-escpos printer profile: {', '.join(sorted(CAPABILITIES['profiles']))}")
    if kind == "network":
        if ok.get("host") == "":
            problems.append('printer.host: is required when kind = "network" (the printer\'s IP address or host name)')
        if "port" in ok and not 0 < ok["port"] < 65536:
            bad("port", "must be 1–65535 (raw ESC/POS printers listen on 9100)")
    if kind == "usb":
        for key in ("vendor_id", "product_id"):
            if key in ok and ok[key] is None:
                problems.append(f'printer.{key}: is required when kind = "usb" (see `lsusb`, e.g. 0x04b8 for Epson)')
            elif key in ok and not 0 <= ok[key] <= 0xFFFF:
                bad(key, "must be 0x0000–0xFFFF")
        for key in ("in_ep", "out_ep"):
            if key in ok and not 0 <= ok[key] <= 0xFF:
                bad(key, "must be an endpoint address 0x00–0xFF")
    if kind == "serial":
        if ok.get("device") == "":
            problems.append('printer.device: is required when kind = "serial" (e.g. "/dev/ttyUSB0" or "COM3")')
        if "baudrate" in ok and ok["baudrate"] not in _BAUDRATES:
            bad("baudrate", f"must be one of {', '.join(map(str, _BAUDRATES))}")
    return problems


def _usb_id(value: Any) -> Any:
    """A USB id as written in lsusb ("04b8" or "0x04b8") turned into an int; anything else unchanged."""
    if isinstance(value, str) and re.fullmatch(r"(0[xX])?[0-9a-fA-F]{1,4}", value):
        return int(value, 16)
    return value


@dataclass(frozen=True, kw_only=True, slots=True)
class PrinterConfig:
    """Where the ticket printer is: ``kind`` "none" (printing off), "network", "usb" or "serial".

    ``timeout`` bounds each step (connect, status answer, sending) in seconds. ``profile``
    is a python-escpos printer profile (code pages, cutter); None means its "default".
    ``check_paper`` asks the printer's paper sensor (DLE EOT 4) before each ticket; turn it
    on only for printers that answer status queries over this connection.
    """

    kind: PrinterKind = "none"
    host: str = ""
    port: int = 9100
    timeout: float = 5.0
    vendor_id: int | None = None
    product_id: int | None = None
    in_ep: int = 0x82
    out_ep: int = 0x01
    device: str = ""
    baudrate: int = 9600
    profile: str | None = None
    check_paper: bool = False

    def __post_init__(self) -> None:
        """Refuse a configuration that could never print."""
        if problems := _problems({f.name: getattr(self, f.name) for f in fields(self)}):
            raise PrinterConfigError(problems)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PrinterConfig:
        """The settings from a parsed ``[printer]`` table; :class:`PrinterConfigError` lists every problem."""
        if not data:
            return cls()  # no [printer] table: the kiosk has no printer
        problems: list[str] = []
        kind = data.get("kind")
        if "kind" not in data:
            problems.append(f"printer.kind: is required; one of {', '.join(map(repr, _KINDS))}")
        allowed = _COMMON_KEYS.union(*_KIND_KEYS.values())
        for key in sorted(set(data) - allowed):
            problems.append(f"printer.{key}: unknown key; allowed: {', '.join(sorted(allowed))}")
        # A key of another kind is usually a half-finished switch (kind = "usb" but host still set);
        # with kind = "none" the others may stay, so printing can be switched off by one line.
        if kind in _KIND_KEYS:
            for other, keys in _KIND_KEYS.items():
                if other == kind:
                    continue
                for key in sorted(keys & set(data)):
                    problems.append(f'printer.{key}: only used when kind = "{other}"; remove it or change kind')
        values = {key: _usb_id(value) if key in ("vendor_id", "product_id") else value
                  for key, value in data.items() if key in allowed}
        defaults = {f.name: f.default for f in fields(cls)}
        problems += _problems({**defaults, **values})
        if problems:
            raise PrinterConfigError(problems)
        if isinstance(values.get("timeout"), int):
            values["timeout"] = float(values["timeout"])
        return cls(**values)

    @property
    def target(self) -> str:
        """The printer's address as staff would recognise it: "192.0.2.1:9100", "USB 04b8:0e28", "/dev/ttyUSB0"."""
        if self.kind == "network":
            return f"{self.host}:{self.port}"
        if self.kind == "usb":
            return f"USB {self.vendor_id or 0:04x}:{self.product_id or 0:04x}"
        if self.kind == "serial":
            return self.device
        return "none"


# --- sending ------------------------------------------------------------------------------


class PrinterError(Exception):
    """The ticket was not printed: ``message`` tells staff in Japanese what to check, ``detail`` the cause."""

    def __init__(self, message: str, detail: str, *, reason: PrinterFailure) -> None:
        super().__init__(f"{message} / {detail}")
        self.message = message
        self.detail = detail
        self.reason = reason


# Connect, wait for the paper status, send: each step may take up to ``timeout``.
_STEPS_PER_JOB: Final = 3


class TicketPrinter:
    """Prints tickets on the configured printer, one at a time and in the order asked."""

    def __init__(self, config: PrinterConfig) -> None:
        self._config = config
        self._queue = asyncio.Lock()
        # A worker thread can outlive the job's deadline (threads cannot be cancelled); while
        # it still holds the connection, the next ticket fails fast as "busy" instead of
        # piling up threads behind a dead printer.
        self._connection = threading.Lock()

    @property
    def config(self) -> PrinterConfig:
        """The settings this printer was made with."""
        return self._config

    @property
    def enabled(self) -> bool:
        """Whether tickets are printed at all (kind is not "none")."""
        return self._config.kind != "none"

    async def print_ticket(self, ticket: TicketPrint) -> bool:
        """Print ``ticket``: True once the printer took it, False when printing is off; else :class:`PrinterError`."""
        if not self.enabled:
            return False
        deadline = self._config.timeout * _STEPS_PER_JOB
        async with self._queue:
            try:
                await asyncio.wait_for(asyncio.to_thread(self._print_blocking, ticket), deadline)
            except TimeoutError:
                # Only the deadline: the worker turns its own socket timeouts into PrinterError.
                raise self._error("timeout", f"no answer within {deadline:g} s") from None
        return True

    def _print_blocking(self, ticket: TicketPrint) -> None:
        """Render and send ``ticket`` (runs in a worker thread)."""
        data = render_ticket(ticket, profile=self._config.profile)
        if not self._connection.acquire(blocking=False):
            raise self._error("busy", "the previous print job is still waiting for the printer")
        try:
            printer = self._open()
            try:
                if self._config.check_paper:
                    self._check_paper(printer)
                printer._raw(data)
            except TimeoutError as e:
                raise self._error("timeout", f"no answer within {self._config.timeout:g} s: {e}") from e
            except (OSError, ValueError, EscposError) as e:
                # pyusb and pyserial errors are OSError subclasses; pyusb's missing backend is a ValueError.
                raise self._error("disconnected", f"{type(e).__name__}: {e}") from e
            finally:
                printer.close()
        finally:
            self._connection.release()

    def _open(self) -> Escpos:
        """An open python-escpos connection to the configured printer."""
        cfg = self._config
        printer: Escpos
        if cfg.kind == "usb":
            if not Usb.is_usable():
                raise self._error("driver_missing", "python package pyusb is not installed")
            # pyusb counts its timeout in milliseconds.
            printer = Usb(cfg.vendor_id, cfg.product_id, timeout=int(cfg.timeout * 1000),
                          in_ep=cfg.in_ep, out_ep=cfg.out_ep, profile=cfg.profile)
        elif cfg.kind == "serial":
            if not Serial.is_usable():
                raise self._error("driver_missing", "python package pyserial is not installed")
            printer = Serial(cfg.device, cfg.baudrate, timeout=cfg.timeout, profile=cfg.profile)
        else:
            printer = Network(cfg.host, cfg.port, timeout=cfg.timeout, profile=cfg.profile)
        try:
            if isinstance(printer, Network):
                # Network.open drops its socket unclosed when the connection fails and only
                # knows IPv4; create_connection closes it, and resolves names to IPv4 or IPv6.
                printer.device = socket.create_connection((cfg.host, cfg.port), timeout=cfg.timeout)
            else:
                printer.open()
            if cfg.kind == "serial":
                # python-escpos sets only the read timeout; with hardware flow control a switched-off
                # printer would block a write forever.
                printer.device.write_timeout = cfg.timeout  # type: ignore[union-attr]
        except (OSError, ValueError, EscposError) as e:
            cause = e.__context__ if isinstance(e, EscposError) and e.__context__ else e
            raise self._error("unreachable", f"{type(cause).__name__}: {cause}") from e
        return printer

    def _check_paper(self, printer: Escpos) -> None:
        """Raise ``paper_out`` when the paper sensor reports the roll empty; log when it is nearly empty."""
        status = printer.paper_status()  # 2 plenty, 1 near end, 0 none
        if status == 0:
            raise self._error("paper_out", "the printer reports paper end (DLE EOT 4)")
        if status == 1:
            _log.warning("ticket printer %s: paper roll nearly empty", self._config.target)

    def _error(self, reason: PrinterFailure, detail: str) -> PrinterError:
        """A :class:`PrinterError` whose Japanese message says what staff should check."""
        target = self._config.target
        check = {
            "network": "プリンターの電源とLANケーブルを確認してください。",
            "usb": "プリンターの電源とUSBケーブルを確認してください。",
            "serial": "プリンターの電源とケーブルを確認してください。",
        }.get(self._config.kind, "")
        message = {
            "unreachable": f"プリンターに接続できません（{target}）。{check}",
            "timeout": f"プリンターが応答しません（{target}）。電源・用紙・カバーを確認してください。",
            "disconnected": f"印刷中にプリンターとの接続が切れました（{target}）。{check}",
            "paper_out": f"プリンターの用紙がありません（{target}）。ロール紙を補充してください。",
            "driver_missing": f"プリンター（{target}）を使う準備ができていません。"
                              "システム管理者に連絡してください。",
            "busy": f"前の番号札の印刷が終わっていません（{target}）。プリンターを確認してください。",
        }[reason]
        return PrinterError(message, f"{target}: {detail}", reason=reason)
