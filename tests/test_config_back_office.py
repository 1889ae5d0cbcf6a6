"""Configuration of the back office: stages per procedure, people, where a branch's cards are kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from queue_server.cli import demo_config_path
from queue_server.config import ConfigError, load_config

OFFICES = """
[[offices]]
id = "main"
name = "本庁"

[offices.back_office]
people = {people}
cards_kept_at = "{main_kept_at}"

[[offices.procedures]]
id = "pickup"
name = "カード交付"
number = {{ range = [300, 599] }}
service_minutes = 10
{pickup}

[[offices.counters]]
id = "1"
procedures = ["pickup"]

[[offices]]
id = "branch"
name = "支所"

[offices.back_office]
cards_kept_at = "{branch_kept_at}"

[[offices.procedures]]
id = "pickup"
name = "カード交付"
number = {{ prefix = "P", width = 3 }}
service_minutes = 10

[[offices.counters]]
id = "1"
procedures = ["pickup"]
"""


def write(tmp_path: Path, *, people: object = 1, main_kept_at: str = "", branch_kept_at: str = "main",
          pickup: str = 'prep_minutes = 15\npost_minutes = 10\nstages = ["prepare", "post"]') -> Path:
    path = tmp_path / "office.toml"
    path.write_text(OFFICES.format(people=people, main_kept_at=main_kept_at, branch_kept_at=branch_kept_at,
                                   pickup=pickup), encoding="utf-8")
    return path


def test_the_demo_prepares_pickups_and_keeps_the_branch_s_cards_at_the_main_office() -> None:
    config = load_config(demo_config_path())
    assert config.offices["honcho"].procedures["pickup"].stages == ("prepare", "post")
    assert config.offices["mizuno"].procedures["pickup"].stages == ("prepare", "post")
    assert config.offices["mizuno"].work_office == "honcho"
    assert config.offices["honcho"].work_office == "honcho" and config.offices["honcho"].back_office_people == 1


def test_a_valid_back_office(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, people=2))
    assert config.offices["main"].back_office_people == 2
    assert config.offices["branch"].cards_kept_at == "main"
    assert config.offices["main"].procedures["pickup"].stages == ("prepare", "post")
    assert config.offices["branch"].procedures["pickup"].stages == ()


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"pickup": 'prep_minutes = 15\nstages = ["prepare", "sorting"]'},
     "offices[0].procedures[0].stages[1]: unknown stage 'sorting'; allowed: prepare, post"),
    ({"pickup": 'prep_minutes = 15\nstages = ["prepare", "prepare"]'},
     "offices[0].procedures[0].stages[1]: stage 'prepare' is listed twice"),
    ({"pickup": 'stages = ["prepare"]'},
     "offices[0].procedures[0].prep_minutes: is required with stage 'prepare'"),
    ({"pickup": 'post_minutes = 0\nstages = ["post"]'},
     "offices[0].procedures[0].post_minutes: must be more than 0"),
    ({"pickup": 'stages = "prepare"'}, "offices[0].procedures[0].stages: must be list"),
    ({"people": -1}, "offices[0].back_office.people: must be 0–100"),
    ({"branch_kept_at": "honcho"},
     "offices[1].back_office.cards_kept_at: unknown office 'honcho'; offices: main, branch"),
    ({"main_kept_at": "branch"},
     "offices[1].back_office.cards_kept_at: office 'main' keeps its cards at 'branch' itself"),
])
def test_a_wrong_back_office_names_the_key_and_what_is_allowed(tmp_path: Path, kwargs: dict[str, object],
                                                               expected: str) -> None:
    path = write(tmp_path, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert f"{path}: {expected}" in "\n".join(caught.value.problems)
