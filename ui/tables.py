"""Tables as every page shows them, with the numbers written as on the figures' axes (ui/charts.py): shares as
percentages with one decimal (91.8%), small or large values as 1.23e-9, counts whole with thousands separated, and
"—" in a cell that holds nothing (never "None")."""
import streamlit as st

NOTHING = "—"


def percent(help: str | None = None):
    """A column of shares (0.918) shown as percentages with one decimal (91.8%)."""
    return st.column_config.NumberColumn(format="percent", step=0.001, help=help)


def scientific(help: str | None = None):
    """A column of values that span decades (differences, losses), as 1.23e-9."""
    return st.column_config.NumberColumn(format="%.2e", help=help)


def decimals(places: int, help: str | None = None):
    """A column of measurements with `places` decimals."""
    return st.column_config.NumberColumn(format=f"%.{places}f", help=help)


def whole(help: str | None = None):
    """A column of counts, thousands separated (12,000)."""
    return st.column_config.NumberColumn(format="%,d", help=help)


def table(data, columns: dict | None = None, where=None, hide_index: bool = True, **options):
    """`data` as a read-only table in `where` (the page, or a column or expander of it): the given columns' formats
    (column name -> percent(), scientific(), decimals(n), whole() or any Streamlit column), and "—" for nothing."""
    return (where or st).dataframe(data, hide_index=hide_index, placeholder=NOTHING, column_config=columns, **options)


def differing(columns: dict[str, list], kept: int) -> dict[str, list]:
    """Table columns (name -> values) without those, after the first `kept`, whose values are all alike: what
    tells the rows apart, in a table narrow enough to read without scrolling sideways."""
    return {name: values for i, (name, values) in enumerate(columns.items())
            if i < kept or len({str(v) for v in values}) > 1}
