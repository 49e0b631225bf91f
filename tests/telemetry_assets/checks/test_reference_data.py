"""Bad reference CSVs fail their asset with a message naming the file, the row and the rule."""

import subprocess
import sys

import pytest

from telemetry_assets.assets.reference import ReferenceDataError, read_reference_csv
from telemetry_assets.checks.schemas import (
    CustomerReference,
    OperationScenarioReference,
    ScenarioReference,
)
from telemetry_cli.launcher import RunFailed

HEADER = "scenario_id,scenario_name,service,slo_target_pct,stid\n"


def load(tmp_path, text: str, model=ScenarioReference, name="scenarios.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path, lambda: read_reference_csv(path, model)


def test_duplicate_id_names_line_and_rule(tmp_path):
    path, read = load(tmp_path, HEADER + "a,A,s,99,1\nb,B,s,99,2\na,A again,s,99,3\n")
    with pytest.raises(ReferenceDataError) as error:
        read()
    message = str(error.value)
    assert str(path) in message
    assert "line 4, column scenario_id" in message and "field_uniqueness" in message


@pytest.mark.parametrize(
    ("target", "rule"),
    [("101", "less_than_or_equal_to(100)"), ("-0.5", "greater_than_or_equal_to(0)"),
     ("ninety", "coerce_dtype('float64')")],
)
def test_slo_target_outside_0_to_100_names_line_and_rule(tmp_path, target, rule):
    path, read = load(tmp_path, HEADER + "a,A,s,99,1\nb,B,s," + target + ",2\n")
    with pytest.raises(ReferenceDataError) as error:
        read()
    message = str(error.value)
    assert str(path) in message
    assert f"line 3, column slo_target_pct: {rule}" in message


def test_missing_column_names_the_column(tmp_path):
    path, read = load(tmp_path, "scenario_id,scenario_name,service,stid\na,A,s,1\n")
    with pytest.raises(ReferenceDataError) as error:
        read()
    assert str(path) in str(error.value) and "slo_target_pct" in str(error.value)
    assert "column_in_dataframe" in str(error.value)


@pytest.mark.parametrize("text", ["", HEADER])
def test_empty_file_or_header_only_is_an_error(tmp_path, text):
    path, read = load(tmp_path, text)
    with pytest.raises(ReferenceDataError, match=r"empty|no rows") as error:
        read()
    assert str(path) in str(error.value)


def test_empty_value_names_line(tmp_path):
    _, read = load(tmp_path, "partner_id,partner_name,tier\ncontoso,,gold\n",
                      CustomerReference, "customers.csv")
    with pytest.raises(ReferenceDataError, match=r"line 2, column partner_name: str_length"):
        read()


def test_allow_list_operation_listed_twice_names_line(tmp_path):
    _, read = load(tmp_path, "operation_name,scenario_id\nGetQuote,a\nGetQuote,b\n",
                      OperationScenarioReference, "operation_scenarios.csv")
    with pytest.raises(ReferenceDataError, match=r"line 3, column operation_name"):
        read()


def test_bad_reference_file_fails_the_asset_run(platform):
    (platform.settings.reference_dir / "scenarios.csv").write_text(
        HEADER + "a,A,s,99,1\na,B,s,99,2\n")
    with pytest.raises(RunFailed, match=r"(?s)scenarios.csv.*line 3, column scenario_id: "
                                        r"field_uniqueness"):
        platform.run_reference()


def test_loading_the_code_location_does_not_import_great_expectations():
    probe = ("import sys; from telemetry_assets import defs; defs.resolve_asset_graph(); "
             "print('great_expectations' in sys.modules)")
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True).stdout
    assert output.strip() == "False"


def test_ids_differing_only_in_case_are_duplicates(tmp_path):
    _, read = load(tmp_path, "partner_id,partner_name,tier\ncontoso,C,gold\nfab,F,gold\n"
                             "Contoso,C2,gold\n", CustomerReference, "customers.csv")
    with pytest.raises(ReferenceDataError) as error:
        read()
    message = str(error.value)
    assert "line 2, column partner_id: unique_ignoring_case (value 'contoso')" in message
    assert "line 4, column partner_id: unique_ignoring_case (value 'Contoso')" in message


def test_file_that_is_not_utf8_names_line_and_column(tmp_path):
    path = tmp_path / "scenarios.csv"
    path.write_bytes(HEADER.encode() + b"a,A,s,99,1\nb,Caf\xe9 au lait,s,99,2\n")
    with pytest.raises(ReferenceDataError) as error:
        read_reference_csv(path, ScenarioReference)
    message = str(error.value)
    assert str(path) in message
    assert "line 3, column scenario_name: not UTF-8 (byte 0xe9)" in message


def test_slo_target_that_is_not_a_number_is_named_without_a_type_error(tmp_path):
    path, read = load(tmp_path, HEADER + "a,A,s,99,1\nb,B,s,abc,2\nc,C,s,101,3\n")
    with pytest.raises(ReferenceDataError) as error:
        read()
    message = str(error.value)
    assert "TypeError" not in message
    assert message.splitlines() == [
        f"{path}: 2 problem(s)",
        "  line 3, column slo_target_pct: coerce_dtype('float64') (value 'abc')",
        # The other rows are still checked against the rules of the column.
        "  line 4, column slo_target_pct: less_than_or_equal_to(100) (value 101.0)",
    ]


def test_slo_target_that_is_not_a_number_fails_the_asset_run_clearly(platform):
    path = platform.settings.reference_dir / "scenarios.csv"
    path.write_text(HEADER + "a,A,s,abc,1\n")
    with pytest.raises(RunFailed) as failed:
        platform.run_reference()
    message = str(failed.value)
    assert "TypeError" not in message
    assert f"{path}: 1 problem(s)" in message
    assert "line 2, column slo_target_pct: coerce_dtype('float64') (value 'abc')" in message
