"""The two places a night window is checked agree: the chart's values.schema.json (Helm refuses
at `helm install`) and the workshop service's own parser (its traits and NightWindow), which the
hub configuration runs when the hub starts. The same sample strings go to both.

Known differences are marked: a strict xfail turns into a failure the day the parser is
tightened, so the mark is removed then.
"""

from __future__ import annotations

import zoneinfo

import helm_python
import pytest
from traitlets import TraitError

from jupyterhub_workshop.hubconfig.services import service_config
from jupyterhub_workshop.spawner.pod import CAPACITY
from jupyterhub_workshop.times import CLOCK_TIME, ZONE_NAME

from .helpers import ci_values, deep_merge, render

CLOCK_SAMPLES = [
    ("22:00", True),
    ("06:00", True),
    ("7:00", True),
    ("0:00", True),
    ("00:00", True),
    ("23:59", True),
    ("9:05", True),
    ("19:30", True),
    ("24:00", False),
    ("25:00", False),
    ("22:60", False),
    ("7:0", False),
    ("07:5", False),
    ("7", False),
    ("2200", False),
    ("22.00", False),
    ("22:00:00", False),
    ("10pm", False),
    ("10:00 pm", False),
    ("22h00", False),
    ("-1:00", False),
    ("+7:00", False),
    ("007:00", False),
    ("٢٢:٠٠", False),
    (1320, False),  # what YAML 1.1 makes of an unquoted 22:00
    (" 22:00", False),
    ("22:00\n", False),
    ("1٢:30", False),
]

ZONE_SAMPLES = [
    ("UTC", True),
    ("Etc/UTC", True),
    ("America/Denver", True),
    ("Europe/Berlin", True),
    ("America/Argentina/Buenos_Aires", True),
    ("America/Port-au-Prince", True),
    ("Asia/Ho_Chi_Minh", True),
    ("Etc/GMT-7", False),
    ("Mountain Time", False),
    ("america/denver", False),
    ("Denver", False),
    ("America/Denver ", False),
    ("GMT-7", False),
    ("America/", False),
    ("/America/Denver", False),
    ("../../etc/passwd", False),
    ("", False),
    ("MST", False),
    ("US/Mountain", False),
    ("EST5EDT", False),
    ("CET", False),
]

needs_zones = pytest.mark.skipif(
    len(zoneinfo.available_timezones()) < 300, reason="no IANA time zone database here"
)


def schema_accepts(night: dict) -> bool:
    """Whether Helm renders the chart with this workshop.cull.night (values.schema.json)."""
    try:
        render(deep_merge(ci_values("minimal-values.yaml"), {"workshop": {"cull": {"night": night}}}))
    except helm_python.HelmValuesError:
        return False
    return True


def parser_accepts(night: dict) -> bool:
    """Whether the workshop service takes it: its traits and its night-window parser, as the
    hub configuration runs them when writing the service's configuration file."""
    try:
        service_config(
            {
                "night_start": night.get("start", ""),
                "night_end": night.get("end", ""),
                "timezone": night.get("timeZone", "UTC"),
            }
        )
    except (ValueError, TraitError):
        return False
    return True


@pytest.mark.parametrize("text, accepted", CLOCK_SAMPLES)
def test_clock_times(text, accepted):
    for night in ({"start": text, "end": "12:34"}, {"start": "12:34", "end": text}):
        assert (schema_accepts(night), parser_accepts(night)) == (accepted, accepted), night


@pytest.mark.parametrize(
    "night, accepted",
    [
        ({"start": "", "end": ""}, True),  # no night window
        ({"start": "22:00", "end": "06:00"}, True),
        ({"start": "6:00", "end": "22:00"}, True),  # a daytime "night" is allowed
        ({"start": "22:00", "end": ""}, False),
        ({"start": "", "end": "06:00"}, False),
    ],
)
def test_start_and_end_together(night, accepted):
    assert (schema_accepts(night), parser_accepts(night)) == (accepted, accepted)


def test_equal_start_and_end_only_the_parser_can_see():
    # a JSON schema cannot compare two values; the hub refuses to start with the parser's message
    night = {"start": "22:00", "end": "22:00"}
    assert schema_accepts(night) and not parser_accepts(night)


@needs_zones
@pytest.mark.parametrize("zone, accepted", ZONE_SAMPLES)
def test_time_zones(zone, accepted):
    # the zone matters only with a window (the service never reads it otherwise)
    night = {"start": "22:00", "end": "06:00", "timeZone": zone}
    assert (schema_accepts(night), parser_accepts(night)) == (accepted, accepted)


@needs_zones
@pytest.mark.parametrize("zone", ["America/Denvr", "Europe/Atlantis"])
def test_well_formed_zones_only_the_time_zone_database_knows(zone):
    # the schema checks the form; whether the zone exists only the service's zoneinfo knows, and
    # the hub refuses to start with its message
    night = {"start": "22:00", "end": "06:00", "timeZone": zone}
    assert schema_accepts(night) and not parser_accepts(night)


def test_the_schema_patterns_are_the_parser_patterns():
    # one rule written twice (Helm needs it in JSON): the two copies are the same text
    import json

    from .helpers import CHART

    night = json.loads((CHART / "values.schema.json").read_text())
    for key in ("workshop", "cull", "night"):
        night = night["properties"][key]
    assert night["properties"]["timeZone"]["pattern"] == f"^({ZONE_NAME.pattern})$"
    assert night["properties"]["start"]["pattern"] == f"^$|^{CLOCK_TIME.pattern}$"
    assert night["properties"]["end"]["pattern"] == f"^$|^{CLOCK_TIME.pattern}$"

    def capacity_patterns(node):
        if isinstance(node, dict):
            if isinstance(node.get("properties"), dict) and "capacity" in node["properties"]:
                yield node["properties"]["capacity"]["pattern"]
            for value in node.values():
                yield from capacity_patterns(value)
        elif isinstance(node, list):
            for value in node:
                yield from capacity_patterns(value)

    schema = json.loads((CHART / "values.schema.json").read_text())
    assert set(capacity_patterns(schema)) == {f"^{CAPACITY.pattern}$"}
