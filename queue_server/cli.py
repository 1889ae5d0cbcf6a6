"""The ``madoguchi`` command: serve, check-config, add-user."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import logging
import sys
from importlib import resources
from pathlib import Path
from typing import Final

from aiohttp import web
from redis.asyncio import Redis

from .clock import Clock
from .config import Config, ConfigError, load_config
from .domain.model import DomainError, Role
from .store.accounts import Accounts
from .store.embedded import EmbeddedRedis

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
    """Run ``action(redis)`` on the configured Redis, or on the data directory's embedded Valkey."""
    embedded = None
    url = config.server.redis_url
    if not url:
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
    redis = Redis.from_url(url)
    try:
        await action(redis)
    finally:
        await redis.aclose()
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
        always_open=config.server.always_open or args.demo,
    )
    config = dataclasses.replace(config, server=server)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = init_app(config, clock=Clock(server.timezone, offset_ms=round(args.clock_offset * 1000)))

    async def announce(app: web.Application) -> None:
        if args.demo:
            for name, role, display in DEMO_USERS:
                await app[ACCOUNTS].add_user(name, DEMO_PASSWORD, role, display)
        base = config.server.public_url or f"http://{server.host}:{server.port}"
        office = next(iter(config.offices))
        print(f"madoguchi is running — offices: {', '.join(config.offices)}", flush=True)
        for label, path in (("ticket kiosk", f"/kiosk/{office}"), ("lobby display", f"/display/{office}"),
                            ("counter panel", f"/counter/{office}"), ("back office", f"/backoffice/{office}"),
                            ("congestion", "/congestion"),
                            ("API (OpenAPI)", "/api/openapi.json")):
            print(f"  {label:14} {base}{path}", flush=True)
        if args.demo:
            print(f"  demo staff: {', '.join(n for n, _, _ in DEMO_USERS)} / password {DEMO_PASSWORD}", flush=True)
        for warning in config.warnings:
            log.warning("%s", warning)
        if (qr_warning := server.qr_address_warning()) is not None:
            # Logged for the operator's log files, printed for the person who just typed the command.
            log.warning("%s", qr_warning)
            print(f"  warning: {qr_warning}", flush=True)

    app.on_startup.append(announce)
    web.run_app(app, host=server.host, port=server.port, print=None, access_log=None, loop=_event_loop())
    return 0


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
    serve.add_argument("--redis-url", help="use this Redis instead of the embedded Valkey")
    serve.add_argument("--demo", action="store_true", help="keep every office open and create demo staff users")
    serve.add_argument("--clock-offset", type=float, default=0.0, metavar="SECONDS",
                       help="run the office clock this many seconds ahead of the system clock (negative: behind), "
                            "to try closing time or the day's change; for tests and demos")
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
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
