"""The HTML page layer shared by the front-end pages: templates, static files, message catalogs.

``setup_pages(app)`` sets up Jinja2 (autoescaped) over ``queue_server/web/templates`` (``base.html``)
and each front-end's ``templates/``, serves each front-end's ``static/`` under ``/static/<area>/``,
loads the message catalogs from ``config/locales/<lang>.toml`` and lets each front-end register
its pages. A page handler calls :func:`render_page`; its template extends ``base.html`` and uses
``t("kiosk.title")`` for every text; the page's JavaScript reads the same catalog from
``#page-catalog`` (see ``static/page.js``).

Visitor-facing Japanese is HTML broken by phrase (and for やさしい日本語 with readings, ruby) by
``japanese.JapaneseText``: in templates through the ``phrases`` filter (``{{ t('kiosk.heading')|phrases }}``),
for scripts as ``#page-catalog-html`` (the Japanese catalogs pre-rendered at startup, placeholders
kept) and ``page_data.names_html`` (office, procedure and counter names), used by page.js's ``tHtml``.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Final

import aiohttp_jinja2
import jinja2
from aiohttp import web

from markupsafe import Markup, escape

from ..config import Config
from ..korean import resolve_particles
from .japanese import JAPANESE_LANGUAGES, RUBY_LANGUAGES, JapaneseText
from .keys import CONFIG
from .views import LANGUAGES

log = logging.getLogger(__name__)

# (URL area, package): /static/<area>/ serves <package>/static/; <package>/templates/ is searched in this order.
FRONT_ENDS: Final = (("common", "queue_server.web"), ("kiosk", "ticket_kiosk"), ("display", "display"),
                     ("counter", "counter_panel"), ("booking", "booking"), ("callcenter", "callcenter"),
                     ("supervisor", "supervisor"), ("backoffice", "backoffice"))
DEFAULT_LANGUAGE: Final = "ja"
# The <html lang> of each catalog: やさしい日本語 is Japanese, 中文 is Simplified Chinese.
HTML_LANG: Final[Mapping[str, str]] = {"ja": "ja", "ja-easy": "ja", "en": "en", "zh": "zh-Hans", "ko": "ko",
                                       "pt": "pt-BR", "vi": "vi"}

Catalog = dict[str, str]
CATALOGS: Final = web.AppKey("catalogs", dict)
JAPANESE_TEXT: Final = web.AppKey("japanese_text", JapaneseText)
CATALOGS_HTML: Final = web.AppKey("catalogs_html", dict)   # {ja, ja-easy: {key: HTML}}
NAMES_HTML: Final = web.AppKey("names_html", dict)         # see names_html()


class CatalogError(Exception):
    """A message catalog is missing or malformed; the message names the file and key."""


def _package_dir(package: str) -> Path:
    return Path(str(resources.files(package)))


def _flatten(table: Mapping[str, Any], source: Path, prefix: str = "") -> Catalog:
    """``{"kiosk": {"title": "…"}}`` → ``{"kiosk.title": "…"}``; every leaf must be a string."""
    flat: Catalog = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, source, f"{name}."))
        elif isinstance(value, str):
            flat[name] = value
        else:
            raise CatalogError(f"{source}: {name}: must be a string or a table, got {type(value).__name__}")
    return flat


def locales_dir() -> Path:
    """Where the catalogs are: ``config/locales``."""
    return _package_dir("config") / "locales"


def load_catalogs(directory: Path | None = None) -> dict[str, Catalog]:
    """Every language's catalog as flat dotted keys; a missing or broken file is a :class:`CatalogError`."""
    directory = directory or locales_dir()
    catalogs: dict[str, Catalog] = {}
    for lang in LANGUAGES:
        source = directory / f"{lang}.toml"
        try:
            catalogs[lang] = _flatten(tomllib.loads(source.read_text(encoding="utf-8")), source)
        except FileNotFoundError:
            raise CatalogError(f"{source}: missing; every language in {', '.join(LANGUAGES)} needs a catalog") from None
        except tomllib.TOMLDecodeError as e:
            raise CatalogError(f"{source}: not valid TOML: {e}") from None
    for lang, catalog in catalogs.items():
        if missing := sorted(set(catalogs[DEFAULT_LANGUAGE]) - set(catalog)):
            log.warning("catalog %s lacks %d keys (Japanese is shown instead): %s", lang, len(missing),
                        ", ".join(missing[:10]))
    return catalogs


def translate(catalogs: Mapping[str, Catalog], lang: str, key: str, **params: Any) -> str:
    """The text of ``key`` in ``lang`` (else Japanese, else the key itself), with ``{name}`` filled in."""
    text = catalogs.get(lang, {}).get(key) or catalogs[DEFAULT_LANGUAGE].get(key)
    if text is None:
        log.warning("no catalog text for %r", key)
        return key
    for name, value in params.items():
        text = text.replace("{" + name + "}", str(value))
    # Korean particles after a filled-in word: 「{counter}(으)로」 → 「3번 창구로」 (page.js does the same).
    return resolve_particles(text) if lang == "ko" else text


def sections(catalog: Catalog, prefixes: Iterable[str]) -> Catalog:
    """The keys of ``catalog`` under any of ``prefixes`` (``"kiosk"`` → ``kiosk.*``)."""
    wanted = tuple(f"{p}." for p in prefixes)
    return {k: v for k, v in catalog.items() if k.startswith(wanted)}


def page_language(request: web.Request, default: str = DEFAULT_LANGUAGE) -> str:
    """The language asked for with ``?lang=`` when it is one of ours, else ``default``."""
    lang = request.query.get("lang", default)
    return lang if lang in LANGUAGES else default


def ruby_texts(catalogs: Mapping[str, Catalog], config: Config) -> list[str]:
    """Every text the pages show with readings: the やさしい日本語 catalog, office, procedure and counter names."""
    texts = list(catalogs["ja-easy"].values())
    for office in config.offices.values():
        texts.append(office.name)
        for p in office.procedures.values():
            texts += [p.names.get("ja-easy", p.name), p.descriptions.get("ja-easy", p.description)]
        texts += [c.name for c in office.counters.values()]
    return [text for text in texts if text]


def names_html(config: Config, japanese: JapaneseText) -> dict[str, Any]:
    """Office, procedure and counter names (and procedure descriptions) as HTML per Japanese language.

    ``{office: {"name": {lang: html}, "procedures": {id: {"name": {lang: html}, "description": …}},
    "counters": {id: {lang: html}}}}``; やさしい日本語 uses its own name when configured, with ruby.
    """
    def each(japanese_text: str, local: dict[str, str] | None = None) -> dict[str, str]:
        return {lang: str(japanese.html((local or {}).get(lang, japanese_text), ruby=lang in RUBY_LANGUAGES))
                for lang in JAPANESE_LANGUAGES if japanese_text}

    return {office.id: {
        "name": each(office.name),
        "procedures": {p.id: {"name": each(p.name, p.names), "description": each(p.description, p.descriptions)}
                       for p in office.procedures.values()},
        "counters": {c.id: each(c.name) for c in office.counters.values()},
    } for office in config.offices.values()}


@jinja2.pass_context
def _phrases(context: jinja2.runtime.Context, text: str) -> Markup:
    """Jinja filter ``phrases``: Japanese text broken by phrase (ruby in やさしい日本語); others escaped."""
    lang = context.get("lang", DEFAULT_LANGUAGE)
    if lang not in JAPANESE_LANGUAGES:
        return escape(text)
    if isinstance(text, FilledText) and lang in RUBY_LANGUAGES:
        # As page.js tHtml: the catalog text's readings (analysed at startup), the values filled in.
        return context["japanese_text"].filled_html(text.template, text.params, ruby=True)
    return context["japanese_text"].html(str(text), ruby=lang in RUBY_LANGUAGES)


class FilledText(str):
    """What ``t(key, name=value)`` gives: the text filled in, knowing its catalog text and values."""

    template: str
    params: Mapping[str, Any]


@jinja2.pass_context
def _t(context: jinja2.runtime.Context, key: str, **params: Any) -> str:
    """Jinja global ``t(key, name=value)``: the text in the page's language (``lang`` in the context)."""
    lang = context.get("lang", DEFAULT_LANGUAGE)
    text = translate(context["catalogs"], lang, key, **params)
    if not params:
        return text
    filled = FilledText(text)
    filled.template, filled.params = translate(context["catalogs"], lang, key), params
    return filled


def render_page(request: web.Request, template: str, *, lang: str = DEFAULT_LANGUAGE,
                catalog_sections: Iterable[str] = ("common",), all_languages: bool = False,
                page_data: Mapping[str, Any] | None = None, **context: Any) -> web.Response:
    """Render a page that extends ``base.html``.

    ``catalog_sections`` (plus ``common`` and ``error``) of the page's catalog are embedded as JSON
    for its script; with ``all_languages`` every language's sections are embedded, keyed by language,
    for pages that switch language without reloading. ``page_data`` is embedded as JSON too.
    """
    catalogs = request.app[CATALOGS]
    wanted = ("common", "error", *catalog_sections)
    embedded: Any = ({code: sections(c, wanted) for code, c in catalogs.items()} if all_languages
                     else sections(catalogs[lang], wanted))
    # The Japanese texts as phrase-broken HTML for the script, for the languages it may show.
    embedded_html = {code: sections(c, wanted) for code, c in request.app[CATALOGS_HTML].items()
                     if all_languages or code == lang}
    response = aiohttp_jinja2.render_template(template, request, {
        "lang": lang, "html_lang": HTML_LANG[lang], "catalogs": catalogs, "languages": LANGUAGES,
        "catalog": embedded, "catalog_html": embedded_html, **context,
        # Every page shows times in the office's zone, whatever the zone of the machine it runs on.
        "page_data": {"timezone": request.app[CONFIG].server.timezone, "names_html": request.app[NAMES_HTML],
                      **(page_data or {})},
    })
    response.headers.setdefault("Cache-Control", "no-cache")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")  # status links carry the visitor's token
    return response


def _front_end_dirs() -> list[tuple[str, Path]]:
    return [(area, _package_dir(package)) for area, package in FRONT_ENDS]


def setup_pages(app: web.Application) -> None:
    """Templates, static files and catalogs; then every front-end registers its pages."""
    app[CATALOGS] = load_catalogs()
    # Phrases and readings of every Japanese text the pages show, computed once, here; the readings
    # come from readings.json, or for a city's own texts from a child process (web/japanese.py).
    japanese = app[JAPANESE_TEXT] = JapaneseText(app[CONFIG].readings)
    japanese.prepare(ruby_texts(app[CATALOGS], app[CONFIG]))
    app[CATALOGS_HTML] = {lang: japanese.catalog_html(app[CATALOGS][lang], lang) for lang in JAPANESE_LANGUAGES}
    app[NAMES_HTML] = names_html(app[CONFIG], japanese)
    dirs = _front_end_dirs()
    loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(d / "templates") for _, d in dirs])
    env = aiohttp_jinja2.setup(app, loader=loader, autoescape=jinja2.select_autoescape(default=True),
                               undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals["t"] = _t
    env.filters["phrases"] = _phrases
    # Defaults, so a template rendered without render_page still works (render_page overrides them).
    env.globals.update(catalogs=app[CATALOGS], lang=DEFAULT_LANGUAGE, html_lang=HTML_LANG[DEFAULT_LANGUAGE],
                       catalog={}, catalog_html={}, page_data={}, languages=LANGUAGES, japanese_text=japanese)

    for area, directory in dirs:
        static = directory / "static"
        if static.is_dir():
            app.router.add_static(f"/static/{area}/", static, name=f"static-{area}", append_version=True)

    def static_url(area: str, filename: str) -> str:
        """``static("common", "common.css")`` → ``/static/common/common.css?v=…`` (changes when the file does)."""
        return str(app.router[f"static-{area}"].url_for(filename=filename))  # type: ignore[union-attr]

    env.globals["static"] = static_url

    from backoffice import routes as backoffice_routes
    from booking import routes as booking_routes
    from callcenter import routes as callcenter_routes
    from counter_panel import routes as counter_routes
    from display import routes as display_routes
    from supervisor import routes as supervisor_routes
    from ticket_kiosk import routes as kiosk_routes

    kiosk_routes.setup(app)
    display_routes.setup(app)
    counter_routes.setup(app)
    booking_routes.setup(app)
    callcenter_routes.setup(app)
    supervisor_routes.setup(app)
    backoffice_routes.setup(app)
