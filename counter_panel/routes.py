"""The counter panel's URLs: the page ``/counter/{office}``; it acts only through the public API."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register the counter panel page."""
