"""The report's row accounting says what the reader did about a spreadsheet export."""

from __future__ import annotations

import pandas as pd
from panelmlp.report.accounting import accounting_section


def test_dropped_empty_columns_and_names_differing_by_spaces_are_shown():
    entry = {
        "file": "export.csv",
        "lines_read": 3,
        "data_lines": 2,
        "parsed_as_is": 2,
        "repaired": 0,
        "quarantined": 0,
        "empty_columns_dropped": 3,
        "similar_column_names": [["GFAP", "GFAP "]],
    }
    html = accounting_section({"files": [entry]}, pd.DataFrame(), {})
    assert "3 empty unnamed columns at the end of every line" in html
    assert "differ only by spaces" in html and "&#x27;GFAP &#x27;" in html


def test_a_plain_file_gets_no_export_notes():
    entry = {"file": "plain.csv", "data_lines": 2, "parsed_as_is": 2, "empty_columns_dropped": 0}
    html = accounting_section({"files": [entry]}, pd.DataFrame(), {})
    assert "empty unnamed" not in html and "differ only by spaces" not in html
