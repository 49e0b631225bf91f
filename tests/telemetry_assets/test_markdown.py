"""Reference names reach the Dagster UI's Markdown metadata as text, never as markup."""

import re

from dagster import AssetKey

from telemetry_assets import markdown
from tests.helpers import HOSTILE, HTML_ID, RICH_ID, SLACK_ID

# Markdown or HTML that a name could open if it were not escaped.
UNESCAPED = re.compile(r"(?<!\\)[<>\[\]`*_~&]")


def test_a_cell_is_one_line_of_literal_text():
    shown = markdown.cell('<a href="x">[y](z)</a> | *b* \\ &amp;\nnext')
    assert "\n" not in shown
    assert UNESCAPED.search(shown.replace("\\\\", "")) is None
    assert shown.count("\\|") == 1 and " | " not in shown.replace("\\|", "")


def test_a_table_keeps_its_columns_whatever_the_values_hold():
    rendered = markdown.table([{"id": "a|b", "ok": markdown.Bold("no")}]).value
    header, rule, row = rendered.splitlines()
    assert header == "| id | ok |" and rule == "|---|---|"
    assert row == "| a\\|b | **no** |"
    assert markdown.table([], ["id"], empty="nothing").value == "nothing"


def test_published_metadata_shows_hostile_names_as_text(hostile_day):
    (record,) = hostile_day.instance.fetch_materializations(
        AssetKey("scenario_daily"), limit=1).records
    shown = record.asset_materialization.metadata["availability_by_scenario"].value
    for scenario_id, name in HOSTILE.items():
        assert markdown.cell(scenario_id) in shown and markdown.cell(name) in shown
    for raw in (RICH_ID, HTML_ID, SLACK_ID):
        assert raw not in shown
    rows = [line for line in shown.splitlines() if line.startswith("| ")]
    assert {line.replace("\\|", "").count("|") for line in rows} == {8}  # 7 columns each
