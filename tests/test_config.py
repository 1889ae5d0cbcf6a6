"""Configuration: the demo is valid; a wrong key, type or reference names the file, key and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from queue_server.cli import demo_config_path
from queue_server.config import TRANSLATED_LANGUAGES, ConfigError, load_config
from queue_server.web.views import LANGUAGES

from .servers import madoguchi

BROKEN = """
[server]
port = "eighty"
colour = "blue"

[calling]
order = "random"

[[offices]]
id = "Main Office"
name = "本庁"

[offices.hours]
week = { mon = "9-16" }

[[offices.procedures]]
id = "pickup"
name = "カード交付"
number = { range = [300, 299] }
service_minutes = -5

[[offices.counters]]
id = "1"
procedures = ["pickup", "passport"]
staff = "volunteer"
"""


def test_the_demo_configuration_models_the_seto_main_office() -> None:
    config = load_config(demo_config_path())
    main = config.offices["honcho"]
    assert len(main.counters) == 6
    assert {"application", "pickup", "ecert", "pin", "other", "review"} <= set(main.procedures)
    assert main.procedures["pickup"].prep_minutes == 15 and main.procedures["pickup"].post_minutes == 10
    assert main.procedures["review"].city_staff_only
    assert len(config.offices) >= 2  # a city has several offices


def test_every_problem_is_reported_with_file_key_and_allowed_values(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = "\n".join(caught.value.problems)
    for expected in (
        f"{path}: server.port: must be int, got str 'eighty'",
        f"{path}: server.colour: unknown key; allowed:",
        f"{path}: calling.order: must be one of priority_then_waited, waited, counter_procedure_order",
        f"{path}: offices[0].id: must be 1–32 of a-z",
        f"{path}: offices[0].hours.week.mon: must be \"HH:MM-HH:MM\" or \"closed\", got '9-16'",
        f"{path}: offices[0].procedures[0].number.range: must be [first, last]",
        f"{path}: offices[0].procedures[0].service_minutes: must be more than 0",
        f"{path}: offices[0].counters[0].procedures: unknown procedure 'passport'; defined: pickup",
        f"{path}: offices[0].counters[0].staff: must be \"contractor\" or \"city\"",
    ):
        assert expected in problems


def test_check_config_command_lists_all_problems(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN, encoding="utf-8")
    result = madoguchi("check-config", str(path))
    assert result.returncode == 1
    assert "9 problem(s)" in result.stdout and "unknown procedure 'passport'" in result.stdout
    ok = madoguchi("check-config", str(demo_config_path()))
    assert ok.returncode == 0 and "honcho" in ok.stdout


UNTRANSLATED = """
[[offices]]
id = "main"
name = "本庁"

[[offices.procedures]]
id = "pickup"
name = "カード交付"
description = "はがきが届いたかた"
names = { en = "Card pickup", zh = "领取卡片", ko = "카드 수령", pt = "Retirada do cartão" }
descriptions = { en = "You received the postcard", kr = "엽서를 받으신 분" }
number = { range = [300, 599] }
service_minutes = 10

[[offices.counters]]
id = "1"
procedures = ["pickup"]
"""


def test_the_demo_names_and_describes_every_procedure_in_every_kiosk_language() -> None:
    config = load_config(demo_config_path())
    assert config.warnings == ()
    assert config.offices["honcho"].name == "瀬戸市役所 個人番号カード交付窓口"  # not a procedure's name
    for office in config.offices.values():
        for procedure in office.procedures.values():
            assert set(procedure.names) >= set(TRANSLATED_LANGUAGES), (office.id, procedure.id)
            assert set(procedure.descriptions) >= set(TRANSLATED_LANGUAGES), (office.id, procedure.id)
            assert procedure.names["en"] != procedure.name


def test_a_kiosk_language_without_a_procedure_name_is_a_warning_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "untranslated.toml"
    path.write_text(UNTRANSLATED, encoding="utf-8")
    config = load_config(path)  # still valid: the office works, in Japanese for those visitors
    warnings = "\n".join(config.warnings)
    assert f"{path}: offices[0].procedures[0].names: no text for vi" in warnings
    assert f"{path}: offices[0].procedures[0].descriptions: no text for zh, ko, pt, vi" in warnings
    assert f"{path}: offices[0].procedures[0].descriptions.kr: not a kiosk language" in warnings
    result = madoguchi("check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 warning(s)" in result.stdout and "no text for vi" in result.stdout and "OK" in result.stdout


def test_readings_must_be_kana(tmp_path: Path) -> None:
    path = tmp_path / "readings.toml"
    path.write_text('[readings]\n"窓口" = "まどぐち"\n"番号" = "bangou"\n' + UNTRANSLATED, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [f"{path}: readings.番号: must be the word's reading in hiragana or katakana, got 'bangou'"]


def test_the_translated_languages_are_the_kiosk_languages_besides_japanese() -> None:
    assert set(TRANSLATED_LANGUAGES) == set(LANGUAGES) - {"ja", "ja-easy"}
