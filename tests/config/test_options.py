"""The daemon's options: read once into one checked Config, handed out in slices."""

from datetime import timezone
from zoneinfo import ZoneInfo

import pytest

from firmware import app
from firmware.config import options
from firmware.errors import ConfigError
from firmware.runtime.adapter import Adapter


def load(*argv, **env):
    return options.load(options.parse_args(list(argv)), env)


def test_ok__one_config_with_slices(tmp_path):
    c = load("--sim", "--board", "tas100", "--data-dir", str(tmp_path), "--no-web",
             "--retention-days", "45", "--operator", "2=Becky", SWITCHBOARD_TZ="Europe/London")
    assert c.board.name == "tas100" and c.data_dir == tmp_path and c.sim and c.site is None
    assert not c.web.enabled and c.web.port == 8557 and c.web.host == "127.0.0.1"
    assert c.timeclock.operators == {2: "Becky"} and c.timeclock.retention_days == 45
    assert c.retention_days == 45 and c.tz == ZoneInfo("Europe/London")
    assert load("--data-dir", str(tmp_path)).tz == timezone.utc


def test_ok__every_part_built_is_an_adapter(tmp_path):
    built = app.adapters(load("--sim", "--data-dir", str(tmp_path)))
    assert [a.name for a in built] == ["clock", "timeclock", "schedule"]
    assert all(isinstance(a, Adapter) for a in built)
    assert [c.name for c in app.commands(load("--data-dir", str(tmp_path)))] == ["figures"]
    # An urgent message is called out by the scheduler: the time clock holds its entry.
    timeclock, schedule = built[1], built[2]
    assert timeclock.call_out == schedule.call_out
    assert timeclock.call_out_state == schedule.call_out_state


@pytest.mark.parametrize("argv, env, expected", [
    (("--retention-days", "7"), {}, "command line: --retention-days = 7: expected at least 30 days"),
    (("--operator", "Becky"), {}, "--operator = 'Becky': expected POSITION=NAME"),
    ((), {"SWITCHBOARD_TZ": "Mars/Olympus"}, "SWITCHBOARD_TZ = 'Mars/Olympus': expected an IANA time zone"),
    (("--board", "nope"), {}, "no board named 'nope'"),
])
def test_fail__a_bad_option_is_named(argv, env, expected):
    with pytest.raises(ConfigError) as e:
        load(*argv, **env)
    assert expected in str(e.value)
