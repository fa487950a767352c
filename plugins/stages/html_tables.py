"""Parsing the extractor's JSX-flavoured HTML tables (`className`, `rowSpan`, `colSpan`).

Header rows and body rows come out as grids with row- and column-spans resolved, so every
cell knows its column header even under two- or three-row headers.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from pydantic import BaseModel, Field

_SUPERSCRIPT = str.maketrans("0123456789+-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻")
_FOOTNOTE_MARK = re.compile(r"^[a-z*†‡§¶#]$")


class ParsedTable(BaseModel):
    """A table as rows of plain-text cells."""

    file: str
    kind: str = Field(description="'clinical' (yields statements) or 'lab-panel' (skipped)")
    caption: str = ""
    header_rows: list[list[str]] = Field(default_factory=list)
    rows: list[list[str]] = Field(default_factory=list)
    footnotes: list[str] = Field(default_factory=list)

    def columns(self) -> list[str]:
        """One label per column, joining stacked header rows ('Dose / Adults')."""
        if not self.header_rows:
            return []
        width = max(len(r) for r in self.header_rows)
        labels = []
        for col in range(width):
            parts: list[str] = []
            for row in self.header_rows:
                cell = row[col] if col < len(row) else ""
                if cell and (not parts or parts[-1] != cell):
                    parts.append(cell)
            labels.append(" / ".join(parts))
        return labels


class _Cell:
    def __init__(self, rowspan: int, colspan: int, header: bool) -> None:
        self.rowspan, self.colspan, self.header = rowspan, colspan, header
        self.parts: list[str] = []


class _TableHTML(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.classes: list[str] = []
        self.caption: list[str] = []
        self.section = "tbody"
        self.rows: list[tuple[str, list[_Cell]]] = []
        self.cell: _Cell | None = None
        self.in_caption = False
        self.sup: list[str] | None = None
        self.tfoot: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): v or "" for k, v in attrs}
        cls = a.get("classname") or a.get("class") or ""
        if cls:
            self.classes.extend(cls.split())
        if tag in ("thead", "tbody", "tfoot"):
            self.section = tag
        elif tag == "caption":
            self.in_caption = True
        elif tag == "tr":
            self.rows.append((self.section, []))
        elif tag in ("td", "th"):
            if not self.rows:
                self.rows.append((self.section, []))
            self.cell = _Cell(_int(a.get("rowspan")), _int(a.get("colspan")), tag == "th")
            self.rows[-1][1].append(self.cell)
        elif tag == "sup":
            self.sup = []
        elif tag in ("p", "br", "li", "div"):
            self._text(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption":
            self.in_caption = False
        elif tag in ("td", "th"):
            self.cell = None
        elif tag == "sup" and self.sup is not None:
            mark = "".join(self.sup).strip()
            self.sup = None
            if not _FOOTNOTE_MARK.match(mark):  # m<sup>2</sup> -> m²; footnote marks dropped
                self._text(mark.translate(_SUPERSCRIPT))
        elif tag in ("p", "li", "div"):
            self._text(" ")

    def handle_data(self, data: str) -> None:
        if self.sup is not None:
            self.sup.append(data)
        else:
            self._text(data)

    def _text(self, text: str) -> None:
        if self.in_caption:
            self.caption.append(text)
        elif self.cell is not None:
            self.cell.parts.append(text)
        elif self.section == "tfoot":
            self.tfoot.append(text)


def _int(value: str | None) -> int:
    try:
        return max(1, int(value or 1))
    except ValueError:
        return 1


def _clean(parts: list[str]) -> str:
    return re.sub(r"\s+", " ", "".join(parts)).strip()


def _grid(rows: list[list[_Cell]]) -> list[list[str]]:
    """Resolve row/col spans: a spanning cell's text fills every slot it covers."""
    grid: dict[tuple[int, int], str] = {}
    for r, cells in enumerate(rows):
        c = 0
        for cell in cells:
            while (r, c) in grid:
                c += 1
            text = _clean(cell.parts)
            for dr in range(cell.rowspan):
                for dc in range(cell.colspan):
                    grid[(r + dr, c + dc)] = text
            c += cell.colspan
    if not grid:
        return []
    height = len(rows)
    width = max(c for _, c in grid) + 1
    return [[grid.get((r, c), "") for c in range(width)] for r in range(height)]


def is_lab_panel(classes: list[str]) -> bool:
    """Lab panels are marked up as such (`lab-values`, `labValueCell*`), thead or not."""
    return "lab-values" in classes or any(c.startswith("labValueCell") for c in classes)


def parse_table(markup: str, file: str, footnotes: list[str] | None = None) -> ParsedTable:
    parser = _TableHTML()
    parser.feed(markup)
    parser.close()
    header_cells = [cells for section, cells in parser.rows if section == "thead"]
    body_cells = [cells for section, cells in parser.rows if section != "thead" and cells]
    notes = [n for n in (_strip_tags(f) for f in footnotes or []) if n]
    tfoot = _clean(parser.tfoot)
    if tfoot and tfoot not in notes:
        notes.append(tfoot)
    return ParsedTable(
        file=file,
        kind="lab-panel" if is_lab_panel(parser.classes) else "clinical",
        caption=_clean(parser.caption).rstrip(":") if parser.caption else "",
        header_rows=_grid(header_cells),
        rows=[r for r in _grid(body_cells) if any(r)],
        footnotes=notes,
    )


def _strip_tags(text: str) -> str:
    text = re.sub(r"<sup>\s*([a-z*†‡§¶#])\s*</sup>", r"\1: ", text)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", text)).strip()
