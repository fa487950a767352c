"""Parsing the extractor's JSX-flavoured HTML tables (`className`, `rowSpan`, `colSpan`).

Header rows and body rows come out as grids with row- and column-spans resolved, so every
cell knows its column header even under two- or three-row headers. The extractor prints every
element on its own indented line, so the line breaks around `<sub>`/`<sup>` are not spaces:
`H<sub>2</sub>O` reads "H2O", `m<sup>2</sup>` reads "m²", and a footnote marker
(`<sup>a</sup>`) is recorded, not kept in the text. Lab panels (the vignette's lab values)
are told apart from clinical tables by their markup first and their structure second, so a
clinical table without a thead stays clinical.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from pydantic import BaseModel, Field

from mksap.contracts.errors import LimitError
from mksap_plugins.stages.sentences import SUPERSCRIPT, strip_html

_FOOTNOTE_MARK = re.compile(r"^(?:[a-z]|[*†‡§¶#]+)$")
_SUPERSCRIPTABLE = re.compile(r"^[0-9+\-−]+$")
_LAB_CAPTION = re.compile(r"\blab(?:oratory)?\b.*\b(?:studies|values|results|data|findings)\b|^labs?\b", re.I)
_CLINICAL_FILE = re.compile(r"^[a-z]{2}tab\d{5}\.html$")
_FLAG = re.compile(r"^(?:|H|L|HH|LL|High|Low|\*|↑|↓|A|C)$")
_HAS_NUMBER = re.compile(r"\d")


class ParsedTable(BaseModel):
    """A table as rows of plain-text cells."""

    file: str
    kind: str = Field(description="'clinical' (yields statements) or 'lab-panel' (skipped)")
    kind_reason: str = Field("", description="why it was classified so (markup, metadata or structure)")
    caption: str = ""
    header_rows: list[list[str]] = Field(default_factory=list)
    rows: list[list[str]] = Field(default_factory=list, description="body cells; paragraphs joined")
    paragraphs: list[list[list[str]]] = Field(default_factory=list, description="rows -> cells -> paragraphs")
    sections: list[str] = Field(default_factory=list, description="per body row: the spanning group label above it")
    row_marks: list[list[str]] = Field(default_factory=list, description="per body row: footnote marks in it")
    footnotes: list[str] = Field(default_factory=list, description="'a: text' for marked notes, else the text")

    def columns(self) -> list[str]:
        """One label per column, joining stacked header rows ('Kidney Function / eGFR')."""
        if not self.header_rows:
            return []
        width = max(len(r) for r in self.header_rows)
        labels = []
        for col in range(width):
            parts: list[str] = []
            for row in self.header_rows:
                cell = row[col] if col < len(row) else ""
                if cell and cell not in parts:
                    parts.append(cell)
            labels.append(" / ".join(parts))
        return labels


def _glues_after_script(text: str) -> bool:
    """Whether text right after a `<sub>`/`<sup>` continues the same token: "O" of "H2O",
    ";" after a footnote mark, "/L" after "10⁹". A following word gets its space back."""
    return bool(re.match(r"[;,.:)\]/%]|[A-Z](?![a-z])", text))


def join_paragraphs(paragraphs: list[str]) -> str:
    """Paragraphs of one cell as one string: ' ' after a sentence end, '; ' otherwise."""
    out = ""
    for p in paragraphs:
        if not out:
            out = p
        elif out[-1] in ".;:!?":
            out = f"{out} {p}"
        else:
            out = f"{out}; {p}"
    return out


class _Cell:
    def __init__(self, rowspan: int, colspan: int, header: bool) -> None:
        self.rowspan, self.colspan, self.header = rowspan, colspan, header
        self.paragraphs: list[list[str]] = [[]]
        self.marks: list[str] = []

    def text_parts(self) -> list[str]:
        return [t for t in (_clean(p) for p in self.paragraphs) if t]


class _TableHTML(HTMLParser):
    def __init__(self, max_cells: int, where: str) -> None:
        super().__init__(convert_charrefs=True)
        self.max_cells, self.where, self.cells = max_cells, where, 0
        self.classes: list[str] = []
        self.caption: list[str] = []
        self.section = "tbody"
        self.rows: list[tuple[str, list[_Cell]]] = []
        self.cell: _Cell | None = None
        self.in_caption = False
        self.inline: list[tuple[str, list[str]]] = []  # open <sup>/<sub> and their text
        self.tfoot: list[str] = []
        self.after_script = False

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
            self.cells += 1
            if self.cells > self.max_cells:  # every cell takes a slot of the grid at least
                raise LimitError(
                    f"table {self.where}", f"more than {self.max_cells:,} cells", "max_table_cells", self.max_cells
                )
            if not self.rows:
                self.rows.append((self.section, []))
            self.cell = _Cell(_int(a.get("rowspan")), _int(a.get("colspan")), tag == "th")
            self.rows[-1][1].append(self.cell)
        elif tag in ("sup", "sub"):
            self._trim_trailing_space()
            self.inline.append((tag, []))
        elif tag in ("p", "br", "li", "div"):
            self._break()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self._break()
        else:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption":
            self.in_caption = False
        elif tag in ("td", "th"):
            self.cell = None
        elif tag in ("sup", "sub") and self.inline:
            kind, parts = self.inline.pop()
            text = "".join(parts).strip()
            self.after_script = True
            if kind == "sub":
                self._text(text)
            elif _SUPERSCRIPTABLE.match(text):
                self._text(text.translate(SUPERSCRIPT))
            elif _FOOTNOTE_MARK.match(text):
                if self.cell is not None and text not in self.cell.marks:
                    self.cell.marks.append(text)
            elif text:
                self._text(f"^{text}")
        elif tag in ("p", "li", "div"):
            self._break()

    def handle_data(self, data: str) -> None:
        text = data
        if self.after_script and not self.inline:
            self.after_script = False
            rest = text.lstrip()
            if rest and rest != text and _glues_after_script(rest):
                text = rest
        if self.inline:
            self.inline[-1][1].append(text)
        else:
            self._text(text)

    def _trim_trailing_space(self) -> None:
        target = self.cell.paragraphs[-1] if self.cell is not None else self.caption if self.in_caption else None
        if target:
            target[-1] = target[-1].rstrip()

    def _break(self) -> None:
        if self.cell is not None and self.cell.paragraphs[-1]:
            self.cell.paragraphs.append([])
        elif self.in_caption:
            self.caption.append(" ")
        elif self.section == "tfoot":
            self.tfoot.append(" ")

    def _text(self, text: str) -> None:
        if self.in_caption:
            self.caption.append(text)
        elif self.cell is not None:
            self.cell.paragraphs[-1].append(text)
        elif self.section == "tfoot":
            self.tfoot.append(text)


def _int(value: str | None) -> int:
    try:
        return min(50, max(1, int(value or 1)))
    except ValueError:
        return 1


def _clean(parts: list[str]) -> str:
    return re.sub(r"\s+", " ", "".join(parts)).strip()


def _grid(rows: list[list[_Cell]], max_cells: int, where: str) -> list[list[_Cell | None]]:
    """Resolve row/col spans: a spanning cell fills every slot it covers (a row span stops at
    the last row). Never more than `max_cells` slots: a table of `rowspan="50" colspan="50"`
    cells fails with a `LimitError` before its grid is built, not after it filled the memory."""
    grid: dict[tuple[int, int], _Cell] = {}
    height = len(rows)
    slots = 0
    for r, cells in enumerate(rows):
        c = 0
        for cell in cells:
            while (r, c) in grid:
                c += 1
            span = min(cell.rowspan, height - r)
            slots += span * cell.colspan
            if slots > max_cells:
                raise LimitError(
                    f"table {where}",
                    f"more than {max_cells:,} cells with its spans resolved",
                    "max_table_cells",
                    max_cells,
                )
            for dr in range(span):
                for dc in range(cell.colspan):
                    grid.setdefault((r + dr, c + dc), cell)
            c += cell.colspan
    if not grid:
        return []
    width = max(c for _, c in grid) + 1
    if height * width > max_cells:
        size = f"{height:,} rows x {width:,} columns with its spans resolved"
        raise LimitError(f"table {where}", size, "max_table_cells", max_cells)
    return [[grid.get((r, c)) for c in range(width)] for r in range(height)]


def is_lab_panel_markup(classes: list[str]) -> bool:
    """Lab panels are marked up as such (`lab-values`, `labValueCell*`), thead or not."""
    return "lab-values" in classes or any(c.startswith("labValueCell") for c in classes)


def looks_like_lab_panel(caption: str, header_rows: list[list[str]], rows: list[list[str]]) -> bool:
    """Structure of a vignette's lab panel: no header, a lab caption, and name/value rows
    (an optional third column holds only H/L flags). A clinical table's prose cells fail this."""
    if header_rows or not rows:
        return False
    if caption and not _LAB_CAPTION.search(caption):
        return False
    for row in rows:
        if len(row) not in (2, 3) or not row[0] or not _HAS_NUMBER.search(row[1]) or len(row[1].split()) > 6:
            return False
        if len(row) == 3 and not _FLAG.match(row[2]):
            return False
    return bool(caption) or all(len(r) == 3 for r in rows)


def classify(
    classes: list[str], file: str, caption: str, header_rows: list[list[str]], rows: list[list[str]], titled: bool
) -> tuple[str, str]:
    """('lab-panel' | 'clinical', reason). Markup decides first, then metadata, then structure."""
    if is_lab_panel_markup(classes):
        return "lab-panel", "lab-values markup"
    if titled or _CLINICAL_FILE.match(file):
        return "clinical", "clinical table id/title"
    if looks_like_lab_panel(caption, header_rows, rows):
        return "lab-panel", "name/value/flag structure"
    return "clinical", "structure"


def parse_table(
    markup: str,
    file: str,
    footnotes: list[str] | None = None,
    *,
    titled: bool = False,
    max_cells: int = 20_000,
    max_chars: int = 1_000_000,
    where: str | None = None,
) -> ParsedTable:
    """Parse one table file. `footnotes` come from the question's metadata (may hold `<sup>`);
    `titled` says the metadata gives the table a title (a clinical table's mark).

    Bounded: more than `max_cells` grid slots, or more than `max_chars` of cell text once the
    spans are resolved (a spanning cell's text is repeated in every slot it covers), is a
    `LimitError` naming `where` (default: `file`)."""
    where = where or file
    parser = _TableHTML(max_cells, where)
    parser.feed(markup)
    parser.close()
    thead = [cells for section, cells in parser.rows if section == "thead" and cells]
    body = [cells for section, cells in parser.rows if section not in ("thead", "tfoot") and cells]
    if not thead:  # leading rows made only of <th> are the header of a thead-less table
        while body and len(thead) < 3 and all(c.header for c in body[0]) and len(body) > 1:
            thead.append(body.pop(0))
    tfoot_rows = [cells for section, cells in parser.rows if section == "tfoot" and cells]

    header_rows = [
        [join_paragraphs(c.text_parts()) if c else "" for c in row] for row in _grid(thead, max_cells, where)
    ]
    budget = _TextBudget(max_chars, where)
    budget.spend(sum(len(t) for row in header_rows for t in row))
    rows: list[list[str]] = []
    paragraphs: list[list[list[str]]] = []
    sections: list[str] = []
    marks: list[list[str]] = []
    section = ""
    pending: tuple[list[str], list[_Cell | None]] | None = None

    def add(texts: list[str], row: list[_Cell | None], label: str) -> None:
        distinct = list(dict.fromkeys(c for c in row if c is not None))
        rows.append(texts)
        paragraphs.append([c.text_parts() if c else [] for c in row])
        sections.append(label)
        marks.append(list(dict.fromkeys(m for c in distinct for m in c.marks)))

    for row in _grid(body, max_cells, where):
        distinct = list(dict.fromkeys(c for c in row if c is not None))
        text_of = {id(c): join_paragraphs(c.text_parts()) for c in distinct}  # once per cell, not per slot
        texts = [text_of[id(c)] if c else "" for c in row]
        budget.spend(2 * sum(len(t) for t in texts))  # once in `rows`, once in `paragraphs`
        if not any(texts):
            continue
        if len(distinct) == 1 and len(row) > 1 and distinct[0].colspan >= len(row):
            if pending is not None:  # two labels in a row: the first labels nothing, it is content
                add(*pending, "")
            section, pending = texts[0], (texts, row)  # a group label spanning the whole row
            continue
        pending = None
        add(texts, row, section)
    if pending is not None:  # a last spanning row labels nothing below it: it is content
        add(*pending, "")

    notes = [n for n in (footnote_text(f) for f in footnotes or []) if n]
    for cells in tfoot_rows:
        text = " ".join(join_paragraphs(c.text_parts()) for c in cells).strip()
        if text and not any(text in n for n in notes):
            notes.append(text)
    caption = _clean(parser.caption).rstrip(":").strip()
    kind, reason = classify(parser.classes, file, caption, header_rows, rows, titled)
    return ParsedTable(
        file=file,
        kind=kind,
        kind_reason=reason,
        caption=caption,
        header_rows=header_rows,
        rows=rows,
        paragraphs=paragraphs,
        sections=sections,
        row_marks=marks,
        footnotes=notes,
    )


class _TextBudget:
    """The cell text a parsed table may hold (what its artifact carries), spans resolved."""

    def __init__(self, limit: int, where: str) -> None:
        self.limit, self.where, self.spent = limit, where, 0

    def spend(self, chars: int) -> None:
        self.spent += chars
        if self.spent > self.limit:
            size = f"more than {self.limit:,} characters of cell text with its spans resolved"
            raise LimitError(f"table {self.where}", size, "max_table_bytes", self.limit)


def footnote_text(note: str) -> str:
    """A metadata footnote as text; a leading `<sup>a</sup>` marker becomes 'a: '."""
    m = re.match(r"\s*<sup>\s*([^<>]{1,3}?)\s*</sup>\s*", note, re.I)
    if m and _FOOTNOTE_MARK.match(m.group(1)):
        return f"{m.group(1)}: {strip_html(note[m.end() :])}"
    return strip_html(note)
