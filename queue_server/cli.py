"""The ``madoguchi`` command: serve, check-config, add-user, add-kiosk, kiosks, remove-kiosk, report, export, staffing."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import logging
import sys
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Final

from aiohttp import web
from redis.asyncio import Redis

from .clock import Clock
from .config import Config, ConfigError, load_config
from .domain.model import DomainError, Role
from .store.accounts import Accounts
from .store.connect import close as close_client
from .store.connect import connect
from .store.embedded import EmbeddedRedis
from .store.kiosks import SETUP_HOURS, Kiosks
from .store.redis_store import DEFAULT_PREFIX
from .workers import WorkersError, follow_supervisor, serve_workers

if TYPE_CHECKING:  # the report commands import the archive lazily: `serve` does not need XlsxWriter loaded
    from .store.archive import Archive

log = logging.getLogger(__name__)

DEMO_PASSWORD: Final = "madoguchi-demo"
DEMO_USERS: Final = (("supervisor", Role.SUPERVISOR, "業務責任者"), ("staff", Role.CONTRACTOR, "窓口スタッフ"),
                     ("city", Role.CITY, "市職員"), ("callcenter", Role.CALLCENTER, "コールセンター"))


def demo_config_path() -> Path:
    """The demo office's configuration shipped with the package."""
    return Path(str(resources.files("config").joinpath("demo.toml")))


def _load(path: str | None) -> Config:
    try:
        return load_config(path or demo_config_path())
    except ConfigError as e:
        print("configuration problems:", *e.problems, sep="\n  ", file=sys.stderr)
        raise SystemExit(2) from None


async def _with_redis(config: Config, action) -> None:  # type: ignore[no-untyped-def]
    """Run ``action(redis)`` on the configured store, or on the data directory's embedded Valkey."""
    embedded = None
    url = None
    if config.server.deployment == "embedded":
        candidate = EmbeddedRedis(config.server.data_dir)
        probe = Redis(unix_socket_path=str(candidate.socket_path))
        try:
            await probe.ping()  # the server is running: use its Valkey
            url = candidate.url
        except Exception:  # noqa: BLE001 - not running: start the data directory's own
            embedded = candidate
            await embedded.start()
            url = embedded.url
        finally:
            await probe.aclose()
    redis = connect(config.server, url)
    try:
        await action(redis)
    finally:
        await close_client(redis)
        if embedded is not None:
            await embedded.stop()


def cmd_check_config(args: argparse.Namespace) -> int:
    """List every problem of a configuration file."""
    try:
        config = load_config(args.file)
    except ConfigError as e:
        print(f"{len(e.problems)} problem(s):", *e.problems, sep="\n  ")
        return 1
    if config.warnings:
        # Warnings do not fail the check: the office works, but some visitors are served worse.
        print(f"{len(config.warnings)} warning(s):", *config.warnings, sep="\n  ")
    print(f"{args.file}: OK — {len(config.offices)} office(s): "
          + ", ".join(f"{o.id} ({len(o.procedures)} procedures, {len(o.counters)} counters)" for o in config.offices.values()))
    return 0


def cmd_add_user(args: argparse.Namespace) -> int:
    """Create or replace a staff user."""
    config = _load(args.config)
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("password: ")

    async def add(redis: Redis) -> None:
        await Accounts(redis).add_user(args.username, password, Role(args.role), args.display_name or "")

    try:
        asyncio.run(_with_redis(config, add))
    except DomainError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    print(f"user {args.username} ({args.role}) saved")
    return 0


def _kiosk_command(args: argparse.Namespace, work: Callable[[Kiosks, Config], Awaitable[str]]) -> int:
    """Run ``work`` on the registry of kiosks and print what it says."""
    config = _load(args.config)
    if getattr(args, "office", None) and args.office not in config.offices:
        print(f"error: no office {args.office!r}; offices: {', '.join(config.offices)}", file=sys.stderr)
        return 1
    said: list[str] = []

    async def run(redis: Redis) -> None:
        said.append(await work(Kiosks(redis, DEFAULT_PREFIX, Clock(config.server.timezone)), config))

    try:
        asyncio.run(_with_redis(config, run))
    except DomainError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    print(*said, sep="\n")
    return 0


def cmd_add_kiosk(args: argparse.Namespace) -> int:
    """Register a kiosk (or again: its old credential stops working) and print its one-time setup link."""

    async def add(kiosks: Kiosks, config: Config) -> str:
        code = await kiosks.add(args.office, args.name, actor="cli")
        server = config.server
        base = server.public_url or f"http://{server.host}:{server.port}"
        return (f"kiosk {args.name} at {args.office} registered. Open this link once on the kiosk itself "
                f"(valid {SETUP_HOURS} hours) and confirm:\n  {base}/kiosk/setup/{code}")

    return _kiosk_command(args, add)


def cmd_kiosks(args: argparse.Namespace) -> int:
    """List the registered kiosks."""

    async def listing(kiosks: Kiosks, config: Config) -> str:
        rows = [f"{r['office']}/{r['name']}: " + ("set up" if r["token"] else "waiting for its setup link")
                for r in await kiosks.all()]
        return "\n".join(rows) or "no kiosk registered"

    return _kiosk_command(args, listing)


def cmd_remove_kiosk(args: argparse.Namespace) -> int:
    """Revoke a kiosk's credential: its check-ins count against its address again."""

    async def remove(kiosks: Kiosks, config: Config) -> str:
        await kiosks.remove(args.office, args.name)
        return f"kiosk {args.name} at {args.office} removed"

    return _kiosk_command(args, remove)


ArchiveWork = Callable[["Archive", Config], Awaitable[bytes]]
"""A command's work on the archive: the file's bytes from the archive and the configuration."""


def _write_from_archive(args: argparse.Namespace, make: ArchiveWork) -> int:
    """Run ``make(archive, config)`` (bytes) on the configured store and write the result to ``args.output``."""
    from .reports.load import PeriodError
    from .store.archive import Archive
    from .store.redis_store import DEFAULT_PREFIX

    config = _load(args.config)
    data: list[bytes] = []

    async def run(redis: Redis) -> None:
        data.append(await make(Archive(redis, DEFAULT_PREFIX), config))

    try:
        asyncio.run(_with_redis(config, run))
    except PeriodError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    Path(args.output).write_bytes(data[0])
    print(f"{args.output}: {len(data[0]):,} bytes")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write the monthly (or a day's) report as .xlsx or .csv, by the output file's extension."""
    from .reports import load, render

    suffix = Path(args.output).suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        print(f"error: -o {args.output}: the file must end in .xlsx or .csv", file=sys.stderr)
        return 2
    if (args.month is None) == (args.day is None):
        print("error: give either --month YYYY-MM or --day YYYY-MM-DD", file=sys.stderr)
        return 2

    async def make(archive: Archive, config: Config) -> bytes:
        report = (await load.monthly_report(archive, config, args.month, args.office) if args.month
                  else await load.daily_report(archive, config, args.day, args.office))
        return render.to_xlsx(report) if suffix == ".xlsx" else render.to_csv(report)

    return _write_from_archive(args, make)


def cmd_export(args: argparse.Namespace) -> int:
    """Write every archived visit of a range of months as CSV (columns: ARCHITECTURE.md)."""
    from .reports import load

    async def make(archive: Archive, config: Config) -> bytes:
        return await load.export_visits(archive, config, args.first, args.last, args.office)

    return _write_from_archive(args, make)


def cmd_staffing(args: argparse.Namespace) -> int:
    """Write the staffing advice for a coming day as .xlsx or .csv."""
    from .reports import render
    from .reports.staffing import staffing_report

    suffix = Path(args.output).suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        print(f"error: -o {args.output}: the file must end in .xlsx or .csv", file=sys.stderr)
        return 2

    async def make(archive: Archive, config: Config) -> bytes:
        report = await staffing_report(archive, config, args.day, args.office, days=args.days)
        return render.to_xlsx(report) if suffix == ".xlsx" else render.to_csv(report)

    return _write_from_archive(args, make)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the server."""
    from .web.app import init_app
    from .web.keys import ACCOUNTS

    config = _load(args.config)
    server = dataclasses.replace(
        config.server,
        host=args.host or config.server.host,
        port=config.server.port if args.port is None else args.port,
        redis_url=args.redis_url if args.redis_url is not None else config.server.redis_url,
        **({"sentinel": None, "cluster_url": "", "cluster_nodes": (), "replica_acks": 0} if args.redis_url else {}),
        always_open=config.server.always_open or args.demo,
    )
    config = dataclasses.replace(config, server=server)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.workers > 1 and args.worker_index is None:
        return _supervise_workers(args, config)
    worker = args.worker_index
    app = init_app(config, clock=Clock(server.timezone, offset_ms=round(args.clock_offset * 1000)),
                   worker=worker, workers=args.workers)

    async def announce(app: web.Application) -> None:
        if args.parent_fd is not None:
            follow_supervisor(asyncio.get_running_loop(), args.parent_fd)
        if worker not in (None, 0):
            return  # the first worker speaks for all of them
        if args.demo:
            for name, role, display in DEMO_USERS:
                await app[ACCOUNTS].add_user(name, DEMO_PASSWORD, role, display)
        base = config.server.public_url or f"http://{server.host}:{server.port}"
        office = next(iter(config.offices))
        print(f"madoguchi is running — offices: {', '.join(config.offices)}", flush=True)
        for label, path in (("ticket kiosk", f"/kiosk/{office}"), ("lobby display", f"/display/{office}"),
                            ("counter panel", f"/counter/{office}"), ("back office", f"/backoffice/{office}"),
                            ("congestion", "/congestion"),
                            ("booking", "/book"), ("call centre", "/callcenter"), ("supervisor", "/supervisor"),
                            ("API (OpenAPI)", "/api/openapi.json")):
            print(f"  {label:14} {base}{path}", flush=True)
        if args.workers > 1:
            print(f"  {args.workers} server processes share port {server.port}", flush=True)
        if args.demo:
            print(f"  demo staff: {', '.join(n for n, _, _ in DEMO_USERS)} / password {DEMO_PASSWORD}", flush=True)
        for warning in config.warnings:
            log.warning("%s", warning)
        if (qr_warning := server.qr_address_warning()) is not None:
            # Logged for the operator's log files, printed for the person who just typed the command.
            log.warning("%s", qr_warning)
            print(f"  warning: {qr_warning}", flush=True)

    app.on_startup.append(announce)
    web.run_app(app, host=server.host, port=server.port, print=None, access_log=None, loop=_event_loop(),
                reuse_port=worker is not None or None)
    return 0


def _supervise_workers(args: argparse.Namespace, config: Config) -> int:
    """``serve --workers N``: this process supervises the Valkey and N workers, each ``serve`` itself."""
    def command(index: int, redis_url: str, parent_fd: int) -> list[str]:
        line = [sys.executable, "-m", "queue_server", "serve", "--host", config.server.host,
                "--port", str(config.server.port), "--workers", str(args.workers),
                "--worker-index", str(index), "--parent-fd", str(parent_fd), "--clock-offset", str(args.clock_offset)]
        if redis_url:  # the supervisor's embedded Valkey (else the store in the configuration)
            line += ["--redis-url", redis_url]
        elif args.redis_url:
            line += ["--redis-url", args.redis_url]
        if args.config:
            line += ["--config", str(Path(args.config).resolve())]
        return line + (["--demo"] if args.demo else [])

    try:
        return asyncio.run(serve_workers(config, args.workers, command))
    except WorkersError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (Linux, macOS): faster sockets and callbacks for the live fan-out."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``madoguchi`` command."""
    parser = argparse.ArgumentParser(prog="madoguchi", description="Queue and call display for city-hall counters")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--config", help="TOML file (default: the demo office)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--redis-url", help="use this Valkey/Redis instead of the configured store (embedded, sentinel or cluster)")
    serve.add_argument("--demo", action="store_true", help="keep every office open and create demo staff users")
    serve.add_argument("--clock-offset", type=float, default=0.0, metavar="SECONDS",
                       help="run the office clock this many seconds ahead of the system clock (negative: behind), "
                            "to try closing time or the day's change; for tests and demos")
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="N server processes on the one port (SO_REUSEPORT, Linux), sharing one Valkey")
    # Given by the supervisor of --workers to each worker, not by people.
    serve.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--parent-fd", type=int, help=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)
    check = sub.add_parser("check-config", help="list every problem of a configuration file")
    check.add_argument("file")
    check.set_defaults(func=cmd_check_config)
    add = sub.add_parser("add-user", help="create or replace a staff user")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--display-name")
    add.add_argument("--config")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(func=cmd_add_user)
    kiosk = sub.add_parser("add-kiosk", help="register a lobby kiosk (prints its one-time setup link)")
    kiosk.add_argument("name", help="the kiosk's name, e.g. lobby-1")
    kiosk.add_argument("--office", required=True, help="the office's id")
    kiosk.add_argument("--config")
    kiosk.set_defaults(func=cmd_add_kiosk)
    kiosks = sub.add_parser("kiosks", help="list the registered kiosks")
    kiosks.add_argument("--config")
    kiosks.set_defaults(func=cmd_kiosks)
    remove = sub.add_parser("remove-kiosk", help="revoke a registered kiosk")
    remove.add_argument("name")
    remove.add_argument("--office", required=True)
    remove.add_argument("--config")
    remove.set_defaults(func=cmd_remove_kiosk)
    report = sub.add_parser("report", help="the monthly report (月報) or a day's report from the visit archive")
    report.add_argument("--month", help="YYYY-MM")
    report.add_argument("--day", help="YYYY-MM-DD")
    report.add_argument("--office", help="one office's id (default: the whole city)")
    report.add_argument("-o", "--output", required=True, help="FILE.xlsx (workbook with charts) or FILE.csv")
    report.add_argument("--config")
    report.set_defaults(func=cmd_report)
    export = sub.add_parser("export", help="every archived visit of a range of months as CSV")
    export.add_argument("--from", dest="first", required=True, metavar="YYYY-MM")
    export.add_argument("--to", dest="last", required=True, metavar="YYYY-MM")
    export.add_argument("--office", help="one office's id (default: every office)")
    export.add_argument("-o", "--output", required=True, help="FILE.csv")
    export.add_argument("--config")
    export.set_defaults(func=cmd_export)
    advice = sub.add_parser("staffing", help="staffing advice (要員配置): counters per hour for a coming day")
    advice.add_argument("--day", required=True, help="YYYY-MM-DD")
    advice.add_argument("--days", type=int, default=1, help="days from --day (a week: 7)")
    advice.add_argument("--office", required=True, help="the office's id")
    advice.add_argument("-o", "--output", required=True, help="FILE.xlsx or FILE.csv")
    advice.add_argument("--config")
    advice.set_defaults(func=cmd_staffing)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
