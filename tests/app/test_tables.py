"""The app's one table formatter: "—" for a cell that holds nothing (never "None"), shares as percentages with one
decimal, values that span decades as 1.23e-9, counts with thousands separated; every page's tables go through it;
and a table keeps only the columns that tell its rows apart when asked."""
import json
import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

from ui import tables

REPO = Path(__file__).resolve().parents[2]


def script():
    from ui import tables

    tables.table({"model": ["PyTorch", "int8"], "share": [0.918, None], "difference": [None, 1.2e-9],
                  "images": [12_000, 3]},
                 {"share": tables.percent(help="of the test images"), "difference": tables.scientific(),
                  "images": tables.whole()})


def test_a_table_shows_a_dash_for_nothing_and_the_apps_number_formats():
    at = AppTest.from_function(script, default_timeout=60).run()
    assert not at.exception
    table = at.dataframe[0]
    assert table.proto.placeholder == "—"  # what the browser draws in the empty cells
    assert table.value["share"].isna().tolist() == [False, True]  # the numbers stay numbers, for sorting
    columns = json.loads(table.proto.columns)
    formats = {name: columns[name]["type_config"] for name in ("share", "difference", "images")}
    assert formats["share"]["format"] == "percent" and formats["share"]["step"] == 0.001  # 91.8%
    assert formats["difference"]["format"] == "%.2e" and formats["images"]["format"] == "%,d"
    assert columns["share"]["help"] == "of the test images" and columns["_index"]["hidden"]


def test_no_page_draws_a_table_of_its_own():
    """Every table goes through ui.tables, so that none of them prints "None" or formats numbers its own way."""
    own = [f"{path.relative_to(REPO)}:{number}" for path in [*(REPO / "app_pages").glob("*.py"),
                                                               *(REPO / "ui").glob("*.py")]
           if path.name != "tables.py"
           for number, line in enumerate(path.read_text().splitlines(), start=1)
           if re.search(r"\.(dataframe|table)\(", line) and "tables.table(" not in line]
    assert not own, own


def test_only_the_columns_that_tell_the_rows_apart_are_kept():
    columns = {"run": ["#1", "#2"], "status": ["finished", "finished"], "batch": [64, 64], "seed": [0, 1]}
    assert tables.differing(columns, kept=2) == {"run": ["#1", "#2"], "status": ["finished", "finished"],
                                                 "seed": [0, 1]}
    assert list(tables.differing({"run": ["#1"], "batch": [64]}, kept=1)) == ["run"]
