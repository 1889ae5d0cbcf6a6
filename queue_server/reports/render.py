"""Writing a :class:`~.figures.Report` as an ``.xlsx`` workbook with native charts, or as CSV.

The workbook has one sheet per table: the title in A1, the period and scope in A2, the headings in
row 4 and the figures from row 5; minutes with one decimal, shares as percentages. Charts are
Excel's own (XlsxWriter), so the city can restyle or copy them. The CSV holds the same tables one
after another (title line, headings, rows, blank line), in UTF-8 with a BOM so Excel opens it as
Unicode.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Final

import xlsxwriter

from .figures import MINUTES, SHARE, Report, Table

HEADER_ROW: Final = 3   # zero-based: row 4 in Excel
FIRST_DATA_ROW: Final = HEADER_ROW + 1


def to_xlsx(report: Report) -> bytes:
    """The report as an ``.xlsx`` workbook (bytes)."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "nan_inf_to_errors": True})
    book.set_properties({"title": report.title, "subject": report.period, "comments": report.scope})
    styles = {
        "title": book.add_format({"bold": True, "font_size": 14}),
        "header": book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True,
                                   "valign": "top"}),
        MINUTES: book.add_format({"num_format": "0.0"}),
        SHARE: book.add_format({"num_format": "0.0%"}),
    }
    for table in report.tables:
        _sheet(book, table, report, styles)
    book.close()
    return out.getvalue()


def _sheet(book: xlsxwriter.Workbook, table: Table, report: Report, styles: dict[str, Any]) -> None:
    sheet = book.add_worksheet(table.key)
    sheet.write(0, 0, table.title, styles["title"])
    sheet.write(1, 0, f"{report.title}　{report.period}　{report.scope}")
    for col, heading in enumerate(table.headers):
        sheet.write(HEADER_ROW, col, heading, styles["header"])
        sheet.set_column(col, col, max(10, min(24, len(heading) * 2)))
    for r, row in enumerate(table.rows, start=FIRST_DATA_ROW):
        for col, value in enumerate(row):
            fmt = styles.get(table.formats.get(col, ""))
            if value is None:
                sheet.write_blank(r, col, None, fmt)
            else:
                sheet.write(r, col, value, fmt)
    sheet.freeze_panes(FIRST_DATA_ROW, 0)
    if table.chart is not None and table.rows:
        _chart(book, sheet, table)


def _chart(book: xlsxwriter.Workbook, sheet: Any, table: Table) -> None:
    spec = table.chart
    assert spec is not None  # checked by the caller
    chart = book.add_chart({"type": spec.kind})
    last = FIRST_DATA_ROW + len(table.rows) - 1
    for col in spec.values:
        chart.add_series({
            "name": [table.key, HEADER_ROW, col],
            "categories": [table.key, FIRST_DATA_ROW, spec.categories, last, spec.categories],
            "values": [table.key, FIRST_DATA_ROW, col, last, col],
        })
    chart.set_title({"name": spec.title})
    if spec.kind != "pie":
        chart.set_legend({"none": len(spec.values) == 1})
    chart.set_size({"width": 720, "height": 360})
    sheet.insert_chart(FIRST_DATA_ROW + len(table.rows) + 2, 0, chart)


def to_csv(report: Report) -> bytes:
    """The report as CSV: each table as a section (title line, headings, rows), UTF-8 with BOM."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([report.title, report.period, report.scope])
    for table in report.tables:
        writer.writerow([])
        writer.writerow([f"【{table.key}】{table.title}"])
        writer.writerow(table.headers)
        for row in table.rows:
            writer.writerow(["" if v is None else _csv_value(v, table.formats.get(i)) for i, v in enumerate(row)])
    return out.getvalue().encode("utf-8-sig")


def _csv_value(value: Any, fmt: str | None) -> Any:
    """Minutes to 0.1, shares to 0.001 (CSV has no number formats; full floats would only be noise)."""
    if isinstance(value, float):
        return round(value, 3 if fmt == SHARE else 1)
    return value
