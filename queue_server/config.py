"""Reading and checking the TOML configuration: server, calling rules, offices.

Every problem is collected, not just the first, so ``madoguchi check-config`` can list them
all; each names the file, the key and what is allowed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .domain.booking import OfficeBookings, ProcedureBooking
from .domain.hours import DayHours, OpeningHours
from .domain.model import BookedBeforeSlot, CallingOrder, Counter, NumberFormat, Procedure, Role
from .domain.tasks import STAGES

WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ID: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_HOURS: Final = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
# The kiosk's languages besides Japanese (web.views.LANGUAGES without ja and ja-easy): each needs
# every procedure's name and description, or its visitors read Japanese. やさしい日本語 uses the
# Japanese name with readings (ruby) on its kanji, so it needs no name of its own.
TRANSLATED_LANGUAGES: Final = ("en", "zh", "ko", "pt", "vi")
NAMED_LANGUAGES: Final = ("ja-easy", *TRANSLATED_LANGUAGES)
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_KANA_READING: Final = re.compile(r"^[\u3041-\u309f\u30a0-\u30ffー]+$")


class ConfigError(Exception):
    """The configuration is wrong; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Office:
    """One office (本庁 or a 支所): its procedures, counters and opening hours."""

    id: str
    name: str
    procedures: dict[str, Procedure]
    counters: dict[str, Counter]
    hours: OpeningHours
    short_name: str = ""
    bookings: OfficeBookings = field(default_factory=OfficeBookings)
    back_office_people: int = 1
    """People planned on back-office work (card preparation, post-issuance), for estimates."""
    back_office_people_by_hour: Mapping[int, int] = field(default_factory=dict)
    """Hours (0–23, local) whose plan differs from ``back_office_people`` (``people_by_hour = { "12" = 1 }``)."""
    cards_kept_at: str = ""
    """A branch whose cards another office keeps and prepares (``[offices.back_office] cards_kept_at``);
    empty: its own back office does its tasks."""

    @property
    def work_office(self) -> str:
        """The office whose back office does this office's tasks."""
        return self.cards_kept_at or self.id


@dataclass(frozen=True, slots=True)
class SentinelSettings:
    """``[server] sentinel``: a primary with replicas, found through Sentinel (redis-py's ``Sentinel``)."""

    master: str
    """The name the Sentinels monitor the primary under (``sentinel monitor <master> …``)."""
    addresses: tuple[tuple[str, int], ...]
    password: str = ""           # of the Valkey nodes
    sentinel_password: str = ""  # of the Sentinels, when they require one


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Where the server listens and keeps its data."""

    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    data_dir: Path = Path("var")
    redis_url: str = ""
    # The store's deployment, at most one of: redis_url (one Valkey), sentinel, cluster_url or
    # cluster_nodes; none: the embedded Valkey in data_dir (``store/connect.py``).
    sentinel: SentinelSettings | None = None
    cluster_url: str = ""
    cluster_nodes: tuple[tuple[str, int], ...] = ()
    replica_acks: int = 0
    """Replicas that must hold a change before it is acknowledged (``WAIT``); else 503 ``unavailable``."""
    replica_ack_timeout_ms: int = 500
    timezone: str = "Asia/Tokyo"
    allowed_origins: tuple[str, ...] = ()
    always_open: bool = False
    secure_cookies: bool = False
    # WebSocket limits: one client (address) cannot crowd out the others. A lobby display needs
    # one or two connections; behind a reverse proxy every client has the proxy's address.
    ws_connections_per_address: int = 20
    ws_subscriptions_per_connection: int = 50
    ws_messages_per_second: float = 10.0   # sustained client messages per connection
    ws_message_burst: int = 60             # messages at once (a page subscribing to many views)
    metrics_allow: tuple[IPNetwork, ...] = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))
    """Addresses that may read ``/metrics`` (a Prometheus scraper cannot sign in); loopback by default."""

    @property
    def deployment(self) -> str:
        """The store's deployment: ``sentinel``, ``cluster``, ``redis`` (one Valkey at redis_url) or ``embedded``."""
        if self.sentinel is not None:
            return "sentinel"
        if self.cluster_url or self.cluster_nodes:
            return "cluster"
        return "redis" if self.redis_url else "embedded"

    def qr_address_warning(self) -> str | None:
        """Why visitors' phones can't open the ticket's QR code, or None if they can.

        Without ``public_url`` the QR code holds the address the kiosk itself used; on a loopback
        host (the demo's 127.0.0.1) that is the kiosk PC, which no phone reaches.
        """
        if self.public_url or not _is_loopback(self.host):
            return None
        return (f"server.public_url is not set and the server listens on {self.host} only: the QR code on each "
                f"ticket opens http://{self.host}:{self.port}/status/…, which visitors' phones cannot reach. "
                "Set server.public_url to the address phones use (e.g. https://madoguchi.city.example.jp) "
                "and listen where that address leads (README: 'The QR code and server.public_url').")


@dataclass(frozen=True, slots=True)
class CallingSettings:
    """The calling policy's knobs."""

    order: CallingOrder = CallingOrder.PRIORITY_THEN_WAITED
    max_recalls: int = 3
    near_turn_ahead: int = 3
    booked_before_slot: BookedBeforeSlot = BookedBeforeSlot.WALK_IN
    hand_over_categories: Mapping[str, str] = field(default_factory=dict)
    """Reason categories of a hand-over (id → Japanese name): the archive and reports keep the
    category, never the reason staff type (free text may hold a name)."""


@dataclass(frozen=True, slots=True)
class ServiceLevels:
    """The contract's service level the reports state as met or not met."""

    target_wait_minutes: float = 30.0
    target_share: float = 0.9
    """Share of visitors to be called within ``target_wait_minutes``."""
    estimate_tolerance_minutes: float = 10.0
    """An estimate shown at issue counts as accurate when the real wait is within this many minutes of it."""


@dataclass(frozen=True, slots=True)
class ArchiveSettings:
    """How long the visit archive is kept."""

    keep_years: int = 3
    """Fiscal years (April–March) kept, the current one included; older months are deleted."""


@dataclass(frozen=True, slots=True)
class OutageNotice:
    """One prepared ``[[outage_notices]]`` text for outage mode: id and text per language (Japanese required).

    Prepared in the configuration, not typed by staff, so it may be shown on every public screen."""

    id: str
    text: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class EstimateSettings:
    """``[estimates]``: priors for booked visitors, until past bookings teach better (``BookingBehaviour``)."""

    booking_no_show_prior: float = 0.1
    booking_lateness_minutes_prior: float = 5.0


@dataclass(frozen=True, slots=True)
class Config:
    """The whole checked configuration."""

    source: Path
    server: ServerSettings
    calling: CallingSettings
    offices: dict[str, Office]
    printer: Mapping[str, Any] = field(default_factory=dict)
    speech: Mapping[str, Any] = field(default_factory=dict)
    congestion_minutes: tuple[int, int] = (15, 30)
    warn_past_closing: bool = True
    readings: Mapping[str, str] = field(default_factory=dict)
    outage_notices: Mapping[str, OutageNotice] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    service_levels: ServiceLevels = field(default_factory=ServiceLevels)
    archive: ArchiveSettings = field(default_factory=ArchiveSettings)
    estimates: EstimateSettings = field(default_factory=EstimateSettings)


class _Reader:
    """Walks the parsed TOML, recording every problem with its key path."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{self.source}: {key}: {message}")

    def warning(self, key: str, message: str) -> None:
        """Something that works but serves visitors worse (a missing translation): reported, not fatal."""
        self.warnings.append(f"{self.source}: {key}: {message}")

    def table(self, data: Mapping[str, Any], key: str, allowed: set[str]) -> Mapping[str, Any]:
        """``data[key]`` as a table (empty if absent), reporting unknown keys in it."""
        value = data.get(key.rsplit(".", 1)[-1], {})
        if not isinstance(value, Mapping):
            self.problem(key, f"must be a table, got {type(value).__name__}")
            return {}
        self.known(value, key, allowed)
        return value

    def known(self, value: Mapping[str, Any], key: str, allowed: set[str]) -> None:
        for unknown in sorted(set(value) - allowed):
            self.problem(f"{key}.{unknown}", f"unknown key; allowed: {', '.join(sorted(allowed))}")

    def get(self, data: Mapping[str, Any], path: str, name: str, kind: type | tuple[type, ...],
            default: Any = None, required: bool = False, check: Callable[[Any], str | None] | None = None) -> Any:
        """One typed value, or ``default`` after recording a problem."""
        if name not in data:
            if required:
                self.problem(f"{path}.{name}" if path else name, "is required")
            return default
        value = data[name]
        key = f"{path}.{name}" if path else name
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            expected = " or ".join(k.__name__ for k in kinds)
            self.problem(key, f"must be {expected}, got {type(value).__name__} {value!r}")
            return default
        if check is not None and (message := check(value)) is not None:
            self.problem(key, message)
            return default
        return value


def _is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1 — not ``0.0.0.0``/``::`` (every interface) nor a name."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _id_check(value: str) -> str | None:
    return None if _ID.match(value) else "must be 1–32 of a-z, 0-9, '-', '_', starting with a letter or digit"


def _parse_hours(reader: _Reader, key: str, value: Any) -> DayHours | None:
    """``"09:00-16:00"`` → DayHours; ``""`` or ``"closed"`` → None."""
    if value in ("", "closed"):
        return None
    match = _HOURS.match(value) if isinstance(value, str) else None
    if match is None:
        reader.problem(key, f'must be "HH:MM-HH:MM" or "closed", got {value!r}')
        return None
    h1, m1, h2, m2 = map(int, match.groups())
    if not (h1 < 24 and h2 <= 24 and m1 < 60 and m2 < 60) or (h1, m1) >= (h2, m2):
        reader.problem(key, f"{value!r} is not an opening time before a closing time")
        return None
    return DayHours(dt.time(h1, m1), dt.time(h2 % 24, m2) if h2 < 24 else dt.time(23, 59))


def _date(value: Any) -> dt.date | None:
    """A TOML date (or an ISO date string) as a date; None if it is not one."""
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            return None
    return value if isinstance(value, dt.date) and not isinstance(value, dt.datetime) else None


def _read_hours(reader: _Reader, office: Mapping[str, Any], path: str) -> OpeningHours:
    hours = reader.table(office, f"{path}.hours", {"week", "national_holidays_closed", "closed_dates", "special"})
    week_raw = reader.table(hours, f"{path}.hours.week", set(WEEKDAYS))
    week = tuple(_parse_hours(reader, f"{path}.hours.week.{d}", week_raw.get(d, "closed")) for d in WEEKDAYS)
    closed = reader.get(hours, f"{path}.hours", "closed_dates", list, default=[])
    closed_dates: list[str] = []
    for i, item in enumerate(closed):
        if isinstance(item, str) and re.match(r"^(\d{4}-)?\d{2}-\d{2}$", item):
            closed_dates.append(item)
        else:
            reader.problem(f"{path}.hours.closed_dates[{i}]", f'must be "MM-DD" or "YYYY-MM-DD", got {item!r}')
    special: dict[dt.date, DayHours | None] = {}
    for i, item in enumerate(reader.get(hours, f"{path}.hours", "special", list, default=[])):
        key = f"{path}.hours.special[{i}]"
        if not isinstance(item, Mapping):
            reader.problem(key, "must be a table with date and hours")
            continue
        reader.known(item, key, {"date", "hours", "note", "booking_only"})
        date = _date(item.get("date"))
        if date is None:
            reader.problem(f"{key}.date", f"must be a date like 2026-11-29, got {item.get('date')!r}")
            continue
        special[date] = _parse_hours(reader, f"{key}.hours", item.get("hours", "closed"))
    return OpeningHours(
        week=week,
        national_holidays_closed=bool(reader.get(hours, f"{path}.hours", "national_holidays_closed", bool, True)),
        closed_dates=tuple(closed_dates),
        special=special,
    )


def _read_number(reader: _Reader, proc: Mapping[str, Any], path: str, name: str = "number") -> NumberFormat:
    """A procedure's ``number`` (or ``booked_number``) table: a prefix letter or a range."""
    path = f"{path}.{name}"
    number = reader.table(proc, path, {"prefix", "width", "range"})
    prefix = reader.get(number, path, "prefix", str, "",
                        check=lambda v: None if re.match(r"^[A-Z]?$", v) else "must be one capital letter A–Z or empty")
    width = reader.get(number, path, "width", int, 3,
                       check=lambda v: None if 1 <= v <= 4 else "must be 1–4")
    rng = reader.get(number, path, "range", list, None)
    if rng is None:
        if not prefix:
            reader.problem(path, "needs a prefix letter or a range = [first, last]")
        return NumberFormat(prefix=prefix, width=width, first=1, last=10**width - 1)
    if len(rng) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in rng) or not 0 <= rng[0] < rng[1] < 10**width:
        reader.problem(f"{path}.range", f"must be [first, last] with 0 ≤ first < last < {10**width}, got {rng!r}")
        return NumberFormat(prefix=prefix, width=width)
    return NumberFormat(prefix=prefix, width=width, first=rng[0], last=rng[1])


def _localised(reader: _Reader, data: Mapping[str, Any], path: str, name: str, japanese: str) -> dict[str, str]:
    """A ``{lang: text}`` table; a kiosk language without a text is a warning (``japanese`` is shown)."""
    table = reader.get(data, path, name, dict, {})
    result = {}
    for lang, text in table.items():
        if lang not in NAMED_LANGUAGES:
            reader.warning(f"{path}.{name}.{lang}", f"not a kiosk language; the kiosk offers {', '.join(NAMED_LANGUAGES)}")
        elif isinstance(text, str) and text.strip():
            result[lang] = text
        else:
            reader.problem(f"{path}.{name}.{lang}", f"must be a non-empty string, got {text!r}")
    if japanese:
        if missing := [lang for lang in TRANSLATED_LANGUAGES if lang not in table]:
            reader.warning(f"{path}.{name}", f"no text for {', '.join(missing)}: visitors choosing "
                                             f"{'it' if len(missing) == 1 else 'them'} read the Japanese {japanese!r}")
    return result


def _read_office(reader: _Reader, data: Any, path: str) -> Office | None:
    if not isinstance(data, Mapping):
        reader.problem(path, "must be a table")
        return None
    reader.known(data, path, {"id", "name", "short_name", "hours", "procedures", "counters", "back_office",
                              "bookings"})
    office_id = reader.get(data, path, "id", str, "", required=True, check=_id_check)
    name = reader.get(data, path, "name", str, "", required=True)
    procedures: dict[str, Procedure] = {}
    used_numbers: list[tuple[str, NumberFormat]] = []
    for i, proc in enumerate(reader.get(data, path, "procedures", list, [], required=True)):
        ppath = f"{path}.procedures[{i}]"
        if not isinstance(proc, Mapping):
            reader.problem(ppath, "must be a table")
            continue
        reader.known(proc, ppath, {"id", "name", "names", "description", "descriptions", "number",
                                   "service_minutes", "prep_minutes", "post_minutes", "stages", "city_staff_only",
                                   "booking", "booked_number"})
        pid = reader.get(proc, ppath, "id", str, "", required=True, check=_id_check)
        minutes = lambda v: None if 0 < v <= 480 else "must be more than 0 and at most 480 minutes"  # noqa: E731
        number = _read_number(reader, proc, ppath)
        # Booked visitors' own numbers (a range or prefix), so the lobby can tell them apart.
        booked_number = _read_number(reader, proc, ppath, "booked_number") if "booked_number" in proc else None
        for key, fmt_here in (("number", number), ("booked_number", booked_number)):
            if fmt_here is None:
                continue
            for other, fmt in used_numbers:
                if fmt.prefix == fmt_here.prefix and fmt.first <= fmt_here.last and fmt_here.first <= fmt.last:
                    reader.problem(f"{ppath}.{key}", f"overlaps the numbers of {other}; numbers must be unique in an office")
            used_numbers.append((f"procedure {pid!r}" + (" (booked)" if key == "booked_number" else ""), fmt_here))
        if pid in procedures:
            reader.problem(f"{ppath}.id", f"duplicate procedure id {pid!r}")
        proc_name = reader.get(proc, ppath, "name", str, pid, required=True)
        proc_description = reader.get(proc, ppath, "description", str, "")
        prep_minutes = float(reader.get(proc, ppath, "prep_minutes", (int, float), 0, check=minutes))
        post_minutes = float(reader.get(proc, ppath, "post_minutes", (int, float), 0, check=minutes))
        stages = _read_stages(reader, proc, ppath, {"prepare": prep_minutes, "post": post_minutes})
        procedures[pid] = Procedure(
            id=pid,
            name=proc_name,
            number=number,
            service_minutes=float(reader.get(proc, ppath, "service_minutes", (int, float), 10, required=True, check=minutes)),
            prep_minutes=prep_minutes,
            post_minutes=post_minutes,
            stages=stages,
            city_staff_only=reader.get(proc, ppath, "city_staff_only", bool, False),
            description=proc_description,
            names=_localised(reader, proc, ppath, "names", proc_name),
            descriptions=_localised(reader, proc, ppath, "descriptions", proc_description),
            booked_number=booked_number,
        )
    counters: dict[str, Counter] = {}
    for i, ctr in enumerate(reader.get(data, path, "counters", list, [], required=True)):
        cpath = f"{path}.counters[{i}]"
        if not isinstance(ctr, Mapping):
            reader.problem(cpath, "must be a table")
            continue
        reader.known(ctr, cpath, {"id", "name", "procedures", "staff", "breaks"})
        breaks = []
        for j, raw in enumerate(reader.get(ctr, cpath, "breaks", list, [])):
            hours = _parse_hours(reader, f"{cpath}.breaks[{j}]", raw)
            if hours is not None:
                breaks.append((hours.opens, hours.closes))
        cid = reader.get(ctr, cpath, "id", str, "", required=True, check=_id_check)
        served = reader.get(ctr, cpath, "procedures", list, [], required=True)
        for p in served:
            if p not in procedures:
                reader.problem(f"{cpath}.procedures", f"unknown procedure {p!r}; defined: {', '.join(procedures)}")
        staff = reader.get(ctr, cpath, "staff", str, "contractor",
                           check=lambda v: None if v in ("contractor", "city") else 'must be "contractor" or "city"')
        if cid in counters:
            reader.problem(f"{cpath}.id", f"duplicate counter id {cid!r}")
        for p in served:
            if p in procedures and procedures[p].city_staff_only and staff != "city":
                reader.problem(f"{cpath}.procedures", f"procedure {p!r} is for city staff only; set staff = \"city\"")
        counters[cid] = Counter(id=cid, name=reader.get(ctr, cpath, "name", str, f"{cid}番窓口"),
                                procedures=tuple(p for p in served if isinstance(p, str)), staff=Role(staff),
                                breaks=tuple(breaks))
    back_office = reader.table(data, f"{path}.back_office", {"people", "people_by_hour", "cards_kept_at"})
    people = reader.get(back_office, f"{path}.back_office", "people", int, 1,
                        check=lambda v: None if 0 <= v <= 100 else "must be 0–100 (people on back-office work)")
    by_hour: dict[int, int] = {}
    for hour, planned in reader.get(back_office, f"{path}.back_office", "people_by_hour", dict, {}).items():
        if not (hour.isdigit() and 0 <= int(hour) <= 23) or isinstance(planned, bool) or not isinstance(planned, int) \
                or not 0 <= planned <= 100:
            reader.problem(f"{path}.back_office.people_by_hour.{hour}",
                           'must be an hour "0"–"23" = 0–100 people on back-office work in that hour')
            continue
        by_hour[int(hour)] = planned
    kept_at = reader.get(back_office, f"{path}.back_office", "cards_kept_at", str, "",
                       check=lambda v: None if v == "" else _id_check(v))
    hours = _read_hours(reader, data, path)
    return Office(id=office_id, name=name, short_name=reader.get(data, path, "short_name", str, name),
                  procedures=procedures, counters=counters, hours=hours,
                  bookings=_read_bookings(reader, data, path, procedures, hours),
                  back_office_people=people, back_office_people_by_hour=by_hour, cards_kept_at="" if kept_at == office_id else kept_at)


def _read_stages(reader: _Reader, proc: Mapping[str, Any], path: str, priors: Mapping[str, float]) -> tuple[str, ...]:
    """``stages = ["prepare", "post"]``: the procedure's back-office stages, each with its prior set."""
    stages: list[str] = []
    for i, stage in enumerate(reader.get(proc, path, "stages", list, [])):
        if stage not in STAGES:
            reader.problem(f"{path}.stages[{i}]", f"unknown stage {stage!r}; allowed: {', '.join(STAGES)}")
        elif stage in stages:
            reader.problem(f"{path}.stages[{i}]", f"stage {stage!r} is listed twice")
        else:
            stages.append(stage)
            if not priors[stage]:
                minutes = "prep_minutes" if stage == "prepare" else "post_minutes"
                reader.problem(f"{path}.{minutes}", f"is required with stage {stage!r}: the expected minutes of one "
                                                    "task, until measured ones replace it")
    return tuple(stages)


def _check_cards_kept_at(reader: _Reader, offices: Mapping[str, Office]) -> None:
    """A branch's cards are kept at another configured office, which keeps its own (no chains)."""
    for i, office in enumerate(offices.values()):
        kept_at = office.cards_kept_at
        if not kept_at:
            continue
        key = f"offices[{i}].back_office.cards_kept_at"
        if kept_at not in offices:
            reader.problem(key, f"unknown office {kept_at!r}; offices: {', '.join(offices)}")
        elif offices[kept_at].cards_kept_at:
            reader.problem(key, f"office {kept_at!r} keeps its cards at {offices[kept_at].cards_kept_at!r} itself; "
                                "name the office that prepares the cards")


_BOOKING_LIMITS: Final[Mapping[str, tuple[int, int, int]]] = {
    # [offices.bookings] key → (default, lowest, highest allowed)
    "slot_minutes": (30, 5, 240),
    "open_days_ahead": (28, 0, 366),
    "checkin_early_minutes": (30, 0, 240),
    "late_minutes": (10, 0, 240),
    "reference_keep_days": (30, 0, 3660),
}


def _read_bookings(reader: _Reader, office: Mapping[str, Any], path: str, procedures: Mapping[str, Procedure],
                   hours: OpeningHours) -> OfficeBookings:
    """``[offices.bookings]`` and each procedure's ``booking`` table (see ``domain/booking.py``).

    Values that work but serve visitors oddly (a slot shorter than the service, a deadline after the
    slot's day has begun) are warnings for ``check-config``."""
    bpath = f"{path}.bookings"
    table = reader.table(office, bpath, set(_BOOKING_LIMITS))
    values = {name: reader.get(table, bpath, name, int, default,
                               check=lambda v, lo=low, hi=high: None if lo <= v <= hi else f"must be {lo}–{hi}")
              for name, (default, low, high) in _BOOKING_LIMITS.items()}
    rules: dict[str, ProcedureBooking] = {}
    raw_procedures = office.get("procedures") if isinstance(office.get("procedures"), list) else []
    for i, proc in enumerate(raw_procedures):
        if not isinstance(proc, Mapping) or "booking" not in proc or proc.get("id") not in procedures:
            continue
        ppath = f"{path}.procedures[{i}].booking"
        booking = reader.table(proc, ppath, {"capacity", "counters", "close_days_before", "close_at", "booking_only",
                                             "booking_only_dates"})
        procedure = procedures[proc["id"]]
        capacity = reader.get(booking, ppath, "capacity", int, None,
                              check=lambda v: None if 1 <= v <= 1000 else "must be 1–1000 places per slot")
        counters = reader.get(booking, ppath, "counters", int, None,
                              check=lambda v: None if 1 <= v <= 100 else "must be 1–100 counters")
        if capacity is not None and counters is not None:
            reader.problem(ppath, "give capacity (places per slot) or counters (kept for bookings), not both")
        if capacity is None and counters is None:
            reader.problem(ppath, "needs capacity (places per slot) or counters (counters kept for bookings)")
        close_at = reader.get(booking, ppath, "close_at", str, None,
                              check=lambda v: None if re.match(r"^([01]\d|2[0-3]):[0-5]\d$", v) else 'must be "HH:MM"')
        dates = []
        for j, item in enumerate(reader.get(booking, ppath, "booking_only_dates", list, [])):
            if (date := _date(item)) is not None:
                dates.append(date)
            else:
                reader.problem(f"{ppath}.booking_only_dates[{j}]", f"must be a date like 2026-11-29, got {item!r}")
        rules[procedure.id] = ProcedureBooking(
            capacity=capacity, counters=counters,
            close_days_before=reader.get(booking, ppath, "close_days_before", int, 0,
                                         check=lambda v: None if 0 <= v <= 30 else "must be 0–30 open days"),
            close_at=dt.time.fromisoformat(close_at) if close_at else None,
            booking_only=reader.get(booking, ppath, "booking_only", bool, False),
            booking_only_dates=frozenset(dates))
        if counters is not None and procedure.service_minutes > values["slot_minutes"] * counters:
            reader.warning(ppath, f"{counters} counter(s) serve fewer than one visitor ({procedure.service_minutes:g} min "
                                  f"each) in a {values['slot_minutes']}-minute slot; each slot still takes 1 booking")
        if rules[procedure.id].close_days_before == 0 and close_at:
            reader.warning(f"{ppath}.close_at", "with close_days_before = 0 bookings close at this time on the "
                                                "slot's own day: slots before it close when they begin")
        if rules[procedure.id].close_days_before > values["open_days_ahead"]:
            reader.warning(f"{ppath}.close_days_before", f"bookings close {rules[procedure.id].close_days_before} open "
                                                         f"days before a slot but open only {values['open_days_ahead']} "
                                                         "days ahead: hardly any slot can be booked")
        if rules[procedure.id].booking_only and not values["open_days_ahead"]:
            reader.warning(ppath, "booking_only with open_days_ahead = 0: visitors can book only for today")
    if values["late_minutes"] >= values["slot_minutes"]:
        reader.warning(f"{bpath}.late_minutes", f"{values['late_minutes']} min late is not before the "
                                                f"{values['slot_minutes']}-minute slot ends: a no-show's place never "
                                                "returns to its slot")
    special = office.get("hours", {}).get("special", []) if isinstance(office.get("hours"), Mapping) else []
    only_dates = set()
    for i, item in enumerate(special if isinstance(special, list) else []):
        if isinstance(item, Mapping) and "booking_only" in item:
            flag = reader.get(item, f"{path}.hours.special[{i}]", "booking_only", bool, False)
            date = _date(item.get("date"))
            if flag and date is not None:
                only_dates.add(date)
                if hours.for_date(date) is None:
                    reader.warning(f"{path}.hours.special[{i}].booking_only", "the office is closed that day")
                if not rules:
                    reader.warning(f"{path}.hours.special[{i}].booking_only",
                                   "no procedure of this office takes bookings: nothing is booking-only that day")
    return OfficeBookings(procedures=rules, booking_only_dates=frozenset(only_dates), **values)


WS_LIMITS: Final[Mapping[str, tuple[type, int, int]]] = {
    # server key → (type, lowest, highest allowed)
    "ws_connections_per_address": (int, 1, 100_000),
    "ws_subscriptions_per_connection": (int, 1, 1_000),
    "ws_messages_per_second": (float, 1, 10_000),
    "ws_message_burst": (int, 1, 100_000),
}


def _read_limit(reader: _Reader, srv: Mapping[str, Any], name: str, kind: type, low: int, high: int) -> Any:
    """One of the WebSocket limits, within its range (the dataclass default when absent or wrong)."""
    default = ServerSettings.__dataclass_fields__[name].default
    kinds = (int, float) if kind is float else (int,)
    value = reader.get(srv, "server", name, kinds, default,
                       check=lambda v: None if low <= v <= high else f"must be {low}–{high:,}, got {v!r}")
    return kind(value)


def _read_networks(reader: _Reader, srv: Mapping[str, Any], name: str,
                   default: tuple[IPNetwork, ...]) -> tuple[IPNetwork, ...]:
    """A list of addresses or networks (``"10.0.0.5"``, ``"10.0.0.0/24"``, ``"::1"``); the default when wrong."""
    def bad(values: list[Any]) -> str | None:
        for value in values:
            try:
                ipaddress.ip_network(str(value))
            except ValueError:
                return f"{value!r} is not an IP address or network (e.g. \"127.0.0.1\" or \"10.0.0.0/24\")"
        return None

    values = reader.get(srv, "server", name, list, None, check=bad)
    return default if values is None else tuple(ipaddress.ip_network(str(v)) for v in values)


DEPLOYMENT_KEYS: Final = ("redis_url", "sentinel", "cluster_url", "cluster_nodes")


def _host_port(value: Any) -> tuple[str, int] | None:
    """``"host:port"`` (``"[::1]:26379"`` for IPv6) → (host, port); None when it is not one."""
    if not isinstance(value, str) or ":" not in value:
        return None
    host, _, port = value.rpartition(":")
    host = host.strip("[]")
    return (host, int(port)) if host and port.isdigit() and 0 < int(port) < 65536 else None


def _read_addresses(reader: _Reader, data: Mapping[str, Any], path: str, name: str) -> tuple[tuple[str, int], ...]:
    def bad(values: list[Any]) -> str | None:
        if not values:
            return 'needs at least one "host:port"'
        wrong = [v for v in values if _host_port(v) is None]
        return f'must be "host:port" strings, e.g. "10.0.0.5:26379"; wrong: {wrong!r}' if wrong else None

    values = reader.get(data, path, name, list, [], required=True, check=bad)
    return tuple(a for v in values if (a := _host_port(v)) is not None)


def _read_deployment(reader: _Reader, srv: Mapping[str, Any]) -> dict[str, Any]:
    """The store's deployment keys of ``[server]``: at most one of DEPLOYMENT_KEYS, and the replica acks."""
    given = [k for k in DEPLOYMENT_KEYS if k in srv and srv[k] not in ("", [], {})]
    if len(given) > 1:
        reader.problem("server", f"{' and '.join(given)} are each a deployment of the store: set only one of "
                                 f"{', '.join(DEPLOYMENT_KEYS)} (none: the embedded Valkey)")
    sentinel = None
    if "sentinel" in srv:
        table = reader.table(srv, "server.sentinel", {"master", "addresses", "password", "sentinel_password"})
        if table:
            sentinel = SentinelSettings(
                master=reader.get(table, "server.sentinel", "master", str, "", required=True,
                                  check=lambda v: None if v.strip() else "must name the monitored primary, e.g. \"mymaster\""),
                addresses=_read_addresses(reader, table, "server.sentinel", "addresses"),
                password=reader.get(table, "server.sentinel", "password", str, ""),
                sentinel_password=reader.get(table, "server.sentinel", "sentinel_password", str, ""))
    cluster_url = reader.get(srv, "server", "cluster_url", str, "", check=lambda v: None if not v or v.startswith(
        ("redis://", "rediss://")) else 'must be a redis:// or rediss:// URL of any node, e.g. "redis://10.0.0.5:6379"')
    cluster_nodes = _read_addresses(reader, srv, "server", "cluster_nodes") if "cluster_nodes" in srv else ()
    replicated = sentinel is not None or bool(cluster_url or cluster_nodes)
    external = replicated or bool(srv.get("redis_url"))
    acks = reader.get(srv, "server", "replica_acks", int, 1 if replicated else 0,
                      check=lambda v: "must be 0–5 replicas" if not 0 <= v <= 5 else None if external or v == 0 else
                      "must be 0 with the embedded Valkey (it has no replicas); replicas come with sentinel or cluster_url")
    timeout = reader.get(srv, "server", "replica_ack_timeout_ms", int, 500,
                         check=lambda v: None if 1 <= v <= 60_000 else "must be 1–60000 milliseconds")
    return {"sentinel": sentinel, "cluster_url": cluster_url, "cluster_nodes": cluster_nodes, "replica_acks": acks,
            "replica_ack_timeout_ms": timeout}


def parse_config(data: Mapping[str, Any], source: Path) -> Config:
    """Check parsed TOML; raise :class:`ConfigError` with every problem found."""
    reader = _Reader(source)
    reader.known(data, "(top level)", {"server", "calling", "offices", "printer", "speech", "congestion", "kiosk",
                                       "readings", "service_levels", "archive", "outage_notices", "estimates"})
    est = reader.table(data, "estimates", {"booking_no_show_prior", "booking_lateness_minutes_prior"})
    estimates = EstimateSettings(
        booking_no_show_prior=float(reader.get(est, "estimates", "booking_no_show_prior", (int, float), 0.1,
                                               check=lambda v: None if 0 <= v < 1 else "must be at least 0 and below 1")),
        booking_lateness_minutes_prior=float(reader.get(
            est, "estimates", "booking_lateness_minutes_prior", (int, float), 5.0,
            check=lambda v: None if 0 < v <= 120 else "must be a number of minutes above 0, at most 120")),
    )
    kiosk = reader.table(data, "kiosk", {"warn_past_closing"})
    srv = reader.table(data, "server", {"host", "port", "public_url", "data_dir", "redis_url", "timezone",
                                        *DEPLOYMENT_KEYS, "replica_acks", "replica_ack_timeout_ms", "allowed_origins", "always_open", "secure_cookies", "metrics_allow",
                                        *WS_LIMITS})
    origins = reader.get(srv, "server", "allowed_origins", list, [])
    server = ServerSettings(
        host=reader.get(srv, "server", "host", str, "127.0.0.1"),
        port=reader.get(srv, "server", "port", int, 8080, check=lambda v: None if 0 <= v < 65536 else "must be 0–65535"),
        public_url=reader.get(srv, "server", "public_url", str, "").rstrip("/"),
        data_dir=(source.parent / reader.get(srv, "server", "data_dir", str, "../var")).resolve(),
        redis_url=reader.get(srv, "server", "redis_url", str, ""),
        **_read_deployment(reader, srv),
        timezone=reader.get(srv, "server", "timezone", str, "Asia/Tokyo"),
        allowed_origins=tuple(str(o).rstrip("/") for o in origins),
        always_open=reader.get(srv, "server", "always_open", bool, False),
        secure_cookies=reader.get(srv, "server", "secure_cookies", bool, False),
        metrics_allow=_read_networks(reader, srv, "metrics_allow", ServerSettings.__dataclass_fields__["metrics_allow"].default),
        **{name: _read_limit(reader, srv, name, kind, low, high) for name, (kind, low, high) in WS_LIMITS.items()},
    )
    cal = reader.table(data, "calling", {"order", "max_recalls", "near_turn_ahead", "booked_before_slot",
                                         "hand_over_categories"})
    orders = [o.value for o in CallingOrder]
    before_slot = [o.value for o in BookedBeforeSlot]
    calling = CallingSettings(
        order=CallingOrder(reader.get(cal, "calling", "order", str, orders[0],
                                      check=lambda v: None if v in orders else f"must be one of {', '.join(orders)}")),
        max_recalls=reader.get(cal, "calling", "max_recalls", int, 3, check=lambda v: None if 0 <= v <= 20 else "must be 0–20"),
        near_turn_ahead=reader.get(cal, "calling", "near_turn_ahead", int, 3, check=lambda v: None if 0 <= v <= 100 else "must be 0–100"),
        booked_before_slot=BookedBeforeSlot(reader.get(
            cal, "calling", "booked_before_slot", str, before_slot[0],
            check=lambda v: None if v in before_slot else f"must be one of {', '.join(before_slot)}")),
        hand_over_categories=_read_categories(reader, cal),
    )
    levels_table = reader.table(data, "service_levels", {"target_wait_minutes", "target_share",
                                                         "estimate_tolerance_minutes"})
    service_levels = ServiceLevels(
        target_wait_minutes=float(reader.get(levels_table, "service_levels", "target_wait_minutes", (int, float), 30,
                                             check=lambda v: None if 0 < v <= 480 else "must be more than 0 and at most 480")),
        target_share=float(reader.get(levels_table, "service_levels", "target_share", (int, float), 0.9,
                                      check=lambda v: None if 0 < v <= 1 else "must be a share more than 0 and at most 1")),
        estimate_tolerance_minutes=float(reader.get(levels_table, "service_levels", "estimate_tolerance_minutes",
                                                    (int, float), 10,
                                                    check=lambda v: None if 0 < v <= 120 else "must be more than 0 and at most 120")),
    )
    archive_table = reader.table(data, "archive", {"keep_years"})
    archive = ArchiveSettings(keep_years=reader.get(archive_table, "archive", "keep_years", int, 3,
                                                    check=lambda v: None if 1 <= v <= 30 else "must be 1–30 fiscal years"))
    cong = reader.table(data, "congestion", {"levels_minutes"})
    levels = reader.get(cong, "congestion", "levels_minutes", list, [15, 30])
    if len(levels) != 2 or not all(isinstance(v, int) for v in levels) or not 0 < levels[0] < levels[1]:
        reader.problem("congestion.levels_minutes", f"must be [low, high] minutes with 0 < low < high, got {levels!r}")
        levels = [15, 30]
    offices: dict[str, Office] = {}
    raw_offices = reader.get(data, "", "offices", list, [], required=True)
    if not raw_offices and "offices" in data:
        reader.problem("offices", "needs at least one [[offices]] table")
    for i, raw in enumerate(raw_offices):
        office = _read_office(reader, raw, f"offices[{i}]")
        if office is not None:
            if office.id in offices:
                reader.problem(f"offices[{i}].id", f"duplicate office id {office.id!r}")
            offices[office.id] = office
    _check_cards_kept_at(reader, offices)
    printer = reader.get(data, "", "printer", dict, {})
    speech = reader.get(data, "", "speech", dict, {})
    readings = _read_readings(reader, data)
    outage_notices = _read_outage_notices(reader, data)
    if reader.problems:
        raise ConfigError(reader.problems)
    return Config(source=source, server=server, calling=calling, offices=offices,
                  printer=printer, speech=speech, congestion_minutes=(levels[0], levels[1]),
                  warn_past_closing=reader.get(kiosk, "kiosk", "warn_past_closing", bool, True),
                  readings=readings, warnings=tuple(reader.warnings), service_levels=service_levels, archive=archive,
                  outage_notices=outage_notices, estimates=estimates)


def _read_outage_notices(reader: _Reader, data: Mapping[str, Any]) -> dict[str, OutageNotice]:
    """``[[outage_notices]]``: ``id`` and ``text = {ja = "…", en = "…", …}`` (Japanese required)."""
    notices: dict[str, OutageNotice] = {}
    for i, raw in enumerate(reader.get(data, "", "outage_notices", list, [])):
        path = f"outage_notices[{i}]"
        if not isinstance(raw, Mapping):
            reader.problem(path, "must be a table with id and text")
            continue
        reader.known(raw, path, {"id", "text"})
        notice_id = reader.get(raw, path, "id", str, "", required=True, check=_id_check)
        text = reader.get(raw, path, "text", dict, {}, required=True)
        texts: dict[str, str] = {}
        for lang, value in text.items():
            if lang not in ("ja", *NAMED_LANGUAGES):
                reader.problem(f"{path}.text.{lang}", f"not a language of the pages; allowed: ja, {', '.join(NAMED_LANGUAGES)}")
            elif not isinstance(value, str) or not value.strip() or len(value) > 200:
                reader.problem(f"{path}.text.{lang}", f"must be a non-empty string of at most 200 characters, got {value!r}")
            else:
                texts[lang] = value
        if "ja" not in text:
            reader.problem(f"{path}.text.ja", "is required: every public screen shows the Japanese text first")
        if notice_id in notices:
            reader.problem(f"{path}.id", f"duplicate outage notice id {notice_id!r}")
        if notice_id and "ja" in texts:
            notices[notice_id] = OutageNotice(id=notice_id, text=texts)
    return notices



def _read_categories(reader: _Reader, cal: Mapping[str, Any]) -> dict[str, str]:
    """``[calling] hand_over_categories``: id → Japanese name of a hand-over's reason category."""
    categories: dict[str, str] = {}
    for cid, name in reader.get(cal, "calling", "hand_over_categories", dict, {}).items():
        if (bad_id := _id_check(cid)) is not None:
            reader.problem(f"calling.hand_over_categories.{cid}", f"the category id {bad_id}")
        elif not isinstance(name, str) or not name.strip():
            reader.problem(f"calling.hand_over_categories.{cid}", f"must be the category's name, got {name!r}")
        else:
            categories[cid] = name
    return categories


def _read_readings(reader: _Reader, data: Mapping[str, Any]) -> dict[str, str]:
    """``[readings]``: word → its reading in kana, correcting the furigana Open JTalk would give."""
    readings: dict[str, str] = {}
    for word, reading in reader.get(data, "", "readings", dict, {}).items():
        if isinstance(reading, str) and _KANA_READING.match(reading) and word.strip():
            readings[word] = reading
        else:
            reader.problem(f"readings.{word}", f"must be the word's reading in hiragana or katakana, got {reading!r}")
    return readings


def load_config(path: str | Path) -> Config:
    """Read and check a TOML configuration file."""
    source = Path(path)
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{source}: file not found"]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{source}: not valid TOML: {e}"]) from None
    return parse_config(data, source)
