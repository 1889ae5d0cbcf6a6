"""The message catalogs: every language has every text, and placeholders match Japanese."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from queue_server.web.pages import DEFAULT_LANGUAGE, CatalogError, load_catalogs, translate
from queue_server.web.views import LANGUAGES

PLACEHOLDER = re.compile(r"\{(\w+)\}")


@pytest.fixture(scope="module")
def catalogs() -> dict[str, dict[str, str]]:
    return load_catalogs()


def test_every_language_has_a_catalog(catalogs: dict[str, dict[str, str]]) -> None:
    assert set(catalogs) == set(LANGUAGES)


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != DEFAULT_LANGUAGE])
def test_each_catalog_has_exactly_the_japanese_keys(catalogs: dict[str, dict[str, str]], lang: str) -> None:
    reference, catalog = catalogs[DEFAULT_LANGUAGE], catalogs[lang]
    assert sorted(set(reference) - set(catalog)) == [], f"{lang}.toml lacks these keys"
    assert sorted(set(catalog) - set(reference)) == [], f"{lang}.toml has keys ja.toml does not"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_texts_are_not_empty_and_use_the_japanese_placeholders(catalogs: dict[str, dict[str, str]],
                                                                lang: str) -> None:
    for key, text in catalogs[lang].items():
        assert text.strip(), f"{lang}: {key} is empty"
        allowed = set(PLACEHOLDER.findall(catalogs[DEFAULT_LANGUAGE].get(key, "")))
        # A language may leave a placeholder out ("{name}" vs "Counter {id}" is allowed for counters).
        used = set(PLACEHOLDER.findall(text))
        if key == "common.counter":
            assert used <= {"name", "id"}, f"{lang}: {key} uses {used}"
        else:
            assert used <= allowed, f"{lang}: {key} uses {used - allowed}, Japanese has {allowed}"


def test_every_api_error_code_has_a_message(catalogs: dict[str, dict[str, str]]) -> None:
    from queue_server.web.messages import ERROR_STATUS

    missing = [code for code in ERROR_STATUS if f"error.{code}.message" not in catalogs[DEFAULT_LANGUAGE]]
    assert missing == []


def test_translate_fills_placeholders_and_falls_back_to_japanese_then_the_key() -> None:
    catalogs = {"ja": {"a.b": "{n} 人待ち", "only.ja": "日本語だけ"}, "en": {"a.b": "{n} waiting"}}
    assert translate(catalogs, "en", "a.b", n=3) == "3 waiting"
    assert translate(catalogs, "en", "only.ja") == "日本語だけ"
    assert translate(catalogs, "en", "no.such") == "no.such"


def test_a_broken_catalog_names_its_file_and_key(tmp_path: Path) -> None:
    for lang in LANGUAGES:
        (tmp_path / f"{lang}.toml").write_text('[kiosk]\ntitle = "x"\n', encoding="utf-8")
    (tmp_path / "en.toml").write_text("[kiosk]\ntitle = 3\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"en\.toml: kiosk\.title: must be a string"):
        load_catalogs(tmp_path)
    (tmp_path / "vi.toml").unlink()
    (tmp_path / "en.toml").write_text('[kiosk]\ntitle = "x"\n', encoding="utf-8")
    with pytest.raises(CatalogError, match=r"vi\.toml: missing"):
        load_catalogs(tmp_path)
