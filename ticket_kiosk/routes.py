"""The ticket kiosk's URLs: the kiosk, the visitor's status page, the public congestion page."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register the kiosk's pages and its print endpoint."""
