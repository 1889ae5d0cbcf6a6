"""Configuration: the demo is valid; a wrong key, type or reference names the file, key and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from queue_server.cli import demo_config_path
from queue_server.config import ConfigError, load_config

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
