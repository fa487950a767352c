"""csv: Anki's text import format (File > Import): one cloze note per statement, with GUID,
deck and tags columns, so importing a newer file updates the notes instead of duplicating them.
GUIDs (`statement_guid`: kept from this file's earlier exports), tags and Source are made as
for the .apkg; a statement of a table shared by several questions is one note here too.

The file starts with Anki's header lines (`#separator:tab`, `#html:true`, `#notetype:Cloze`,
`#guid column:1`, `#deck column:2`, `#tags column:5`, `#columns:...`); the rest is plain CSV
that Python's `csv` module reads back.
"""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path
from typing import Literal

from pydantic import Field

from mksap.atomic import write_text
from mksap.contracts.exporter import Exporter, ExportQuestion, ExportWritten
from mksap_plugins.exporters.anki import AnkiOptions, field_search, note_rows, source_line, statement_guid, tags

COLUMNS = ("GUID", "Deck", "Text", "Back Extra", "Tags")
SEPARATORS = {"tab": "\t", "comma": ","}


class CsvOptions(AnkiOptions):
    separator: Literal["tab", "comma"] = Field("tab", description="column separator: tab or comma")


class CsvExporter(Exporter[CsvOptions]):
    """Anki text import (tab or comma separated) for Anki's built-in Cloze note type."""

    name = "csv"
    version = "2"  # 2: a shared table's statements are one note; GUIDs carried as in the .apkg
    suffix = ".csv"
    unit = "notes"
    options_model = CsvOptions

    def export(
        self, questions: list[ExportQuestion], options: CsvOptions, path: Path
    ) -> ExportWritten:
        sep = SEPARATORS[options.separator]
        rows, skipped = note_rows(questions, options)
        buf = io.StringIO()
        for line in (
            f"#separator:{options.separator}",
            "#html:true",
            "#notetype:Cloze",
            "#guid column:1",
            "#deck column:2",
            f"#tags column:{COLUMNS.index('Tags') + 1}",
            "#columns:" + sep.join(COLUMNS),
        ):
            buf.write(line + "\n")
        writer = csv.writer(buf, delimiter=sep, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        notes: dict[str, str] = {}
        for s, text in rows:
            guid = statement_guid(s)  # as the .apkg does: the GUID this file gave it, else the derived one
            extra = html.escape(s.extra_field or "", quote=False)
            back = (extra + "<br>" if extra else "") + html.escape(
                f"{source_line(s)} · {s.stable_id}", quote=False
            )
            writer.writerow([guid, f"{options.deck}::{s.system}", text, back, " ".join(tags(s))])
            notes[guid] = s.stable_id
        write_text(path, buf.getvalue())
        return ExportWritten(items=len(rows), skipped=skipped, notes=notes)

    @classmethod
    def search(cls, stable_ids: list[str]) -> str | None:
        """The notes of these statements: Anki's Cloze type has no StableId field; Back Extra ends with it."""
        return field_search("Back Extra", stable_ids, "*{}") if stable_ids else None
