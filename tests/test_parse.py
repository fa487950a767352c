"""The parse stage's pieces: the paragraph splitter, inline-HTML stripping, the table parser
and the lab-panel classifier. Unit cases plus hypothesis properties (never crash, idempotent,
never split inside a decimal or an abbreviation, spans resolved to a rectangular grid)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mksap.contracts.errors import ConfigError
from mksap.settings import load_settings
from mksap_plugins.stages.html_tables import classify, looks_like_lab_panel, parse_table
from mksap_plugins.stages.nlp import NlpOptions
from mksap_plugins.stages.sentences import split_sentences, strip_html, unglue
from tests.conftest import EXAMPLES

# -- the splitter ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Start the statin.On review, the lipids improved.", ["Start the statin.", "On review, the lipids improved."]),
        ("Goal is ≥20 mL/min/1.73 m².Then stop.", ["Goal is ≥20 mL/min/1.73 m².", "Then stop."]),
        ("Creatinine was 1.5 mg/dL.Her sodium fell.", ["Creatinine was 1.5 mg/dL.", "Her sodium fell."]),
        ("It was chosen (Option A).Then it failed.", ["It was chosen (Option A).", "Then it failed."]),
        ("The ratio rose.A repeat test helps.", ["The ratio rose.", "A repeat test helps."]),
        ("Use a drug (e.g. Heparin) daily. Stop later.", ["Use a drug (e.g. Heparin) daily.", "Stop later."]),
        ("Give one, i.e. Aspirin, now.", ["Give one, i.e. Aspirin, now."]),
        ("Warfarin vs. Heparin was tested. Done.", ["Warfarin vs. Heparin was tested.", "Done."]),
        ("Lee et al. Reported this first. Next.", ["Lee et al. Reported this first.", "Next."]),
        ("Ask Dr. Rivera. Then wait.", ["Ask Dr. Rivera.", "Then wait."]),
        ("Rates in the U.S. Army are low.", ["Rates in the U.S. Army are low."]),
        ("Take it p.o. Twice a day is fine.", ["Take it p.o. Twice a day is fine."]),
        ("Use form No. 2 only. Then sign.", ["Use form No. 2 only.", "Then sign."]),
        ("S. aureus is common. E. coli is too.", ["S. aureus is common.", "E. coli is too."]),
        ("Low vitamin D. Replace it.", ["Low vitamin D.", "Replace it."]),
        ("A dose of 2.5 mg. A dose of 0.5 mg.", ["A dose of 2.5 mg.", "A dose of 0.5 mg."]),
        ("Is it benign?Yes.", ["Is it benign?", "Yes."]),
        ("", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_strip_html_keeps_comparators_and_superscripts() -> None:
    html = "Hb <7 g/dL and SpO<sub>2</sub> >92%; <i>S. aureus</i>; m<sup>2</sup>; ARB<sup>a</sup> &ge;30"
    assert strip_html(html) == "Hb <7 g/dL and SpO2 >92%; S. aureus; m²; ARB ≥30"


def test_unglue_leaves_initialisms_alone() -> None:
    assert unglue("Seen in the U.S.Army") == "Seen in the U.S.Army"
    assert unglue("done.Next") == "done. Next"


_WORDS = st.sampled_from(["aspirin", "dose", "renal", "the", "mg/dL", "risk", "β-blocker", "(UACR)", "≥30", "and"])
_PROTECTED = st.sampled_from(["e.g. Aspirin", "1.5 mg/dL", "U.S. Army", "vs. Heparin", "Dr. Lee", "No. 2", "S. aureus"])


@st.composite
def paragraphs(draw: st.DrawFn) -> tuple[str, list[str]]:
    """Sentences glued or spaced like the extractor writes them, with protected tokens inside."""
    parts, protected = [], []
    for _ in range(draw(st.integers(1, 5))):
        words = draw(st.lists(_WORDS, min_size=1, max_size=6))
        if draw(st.booleans()):
            token = draw(_PROTECTED)
            words.insert(draw(st.integers(0, len(words))), token)
            protected.append(token)
        parts.append(draw(st.sampled_from(["Then", "Later", "Aspirin", "Renal"])) + " " + " ".join(words) + ".")
    joiners = [draw(st.sampled_from(["", " ", "  "])) for _ in parts]
    return "".join(p + j for p, j in zip(parts, joiners, strict=True)), protected


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_splitter_never_crashes_and_is_idempotent(text: str) -> None:
    sentences = split_sentences(text)
    assert all(s and s == s.strip() for s in sentences)
    assert split_sentences(" ".join(sentences)) == sentences


@settings(max_examples=300, deadline=None)
@given(paragraphs())
def test_splitter_never_splits_inside_a_decimal_or_abbreviation(case: tuple[str, list[str]]) -> None:
    text, protected = case
    sentences = split_sentences(text)
    for token in protected:
        assert any(token in s for s in sentences), (token, sentences)
    assert split_sentences(" ".join(sentences)) == sentences


# -- tables ---------------------------------------------------------------------------------


def _cell(text: str, tag: str = "td", rows: int = 1, cols: int = 1) -> str:
    return f'<{tag} rowSpan="{rows}" colSpan="{cols}">\n  <p>\n    {text}\n  </p>\n</{tag}>'


def test_two_row_thead_with_spans_gives_one_label_per_column() -> None:
    html = (
        '<table className="table"><caption><p>Sample Staging</p></caption><thead>'
        f"<tr>{_cell('Stage', 'th', rows=2)}{_cell('Findings', 'th', cols=2)}</tr>"
        f"<tr>{_cell('Size', 'th')}{_cell('Nodes', 'th')}</tr></thead><tbody>"
        f"<tr>{_cell('I', rows=2)}{_cell('&lt;2 cm')}{_cell('None')}</tr>"
        f"<tr>{_cell('2&ndash;5 cm')}{_cell('One')}</tr></tbody></table>"
    )
    t = parse_table(html, "xxtab24001.html")
    assert t.kind == "clinical" and t.caption == "Sample Staging"
    assert t.columns() == ["Stage", "Findings / Size", "Findings / Nodes"]
    assert t.rows == [["I", "<2 cm", "None"], ["I", "2–5 cm", "One"]]


def test_three_header_rows_and_a_thead_less_th_header() -> None:
    rows = "".join(f"<tr>{_cell(f'H{i}a', 'th')}{_cell(f'H{i}b', 'th')}</tr>" for i in range(3))
    html = f"<table><tbody>{rows}<tr>{_cell('x')}{_cell('y')}</tr></tbody></table>"
    t = parse_table(html, "table.html")
    assert t.header_rows == [["H0a", "H0b"], ["H1a", "H1b"], ["H2a", "H2b"]]
    assert t.columns() == ["H0a / H1a / H2a", "H0b / H1b / H2b"] and t.rows == [["x", "y"]]


def test_sub_sup_footnote_marks_tfoot_and_metadata_footnotes() -> None:
    html = (
        '<table className="table"><thead><tr>'
        f"{_cell('Agent', 'th')}{_cell('Limit', 'th')}</tr></thead><tbody><tr>"
        f"{_cell('Drug Q <sup>b</sup>')}"
        "<td><p>Osmolality &gt;295 mOsm/kg H\n<sub>\n2\n</sub>\nO in m\n<sup>\n2\n</sup>\n</p></td>"
        '</tr></tbody><tfoot><tr><td colSpan="2"><p>Only for adults.</p></td></tr></tfoot></table>'
    )
    t = parse_table(html, "xxtab24002.html", ["Q = sample drug.", "<sup>b</sup>Not in pregnancy."])
    assert t.rows == [["Drug Q", "Osmolality >295 mOsm/kg H2O in m²"]]
    assert t.row_marks == [["b"]]
    assert t.footnotes == ["Q = sample drug.", "b: Not in pregnancy.", "Only for adults."]


def test_a_spanning_group_row_labels_the_rows_below_it() -> None:
    html = (
        f"<table><thead><tr>{_cell('Drug', 'th')}{_cell('Dose', 'th')}</tr></thead><tbody>"
        f"<tr>{_cell('Adults', cols=2)}</tr><tr>{_cell('Drug R')}{_cell('5 mg')}</tr></tbody></table>"
    )
    t = parse_table(html, "xxtab24003.html")
    assert t.rows == [["Drug R", "5 mg"]] and t.sections == ["Adults"]


LAB = (
    '<table className="lab-values table"><caption><p>Laboratory studies:</p></caption><tbody>'
    '<tr><td className="labValueCellLeft1"><p>Sodium</p></td><td className="labValueCellRight1"><p>131 mEq/L</p></td>'
    '<td className="labValueCellRight1 highlow"><p>L</p></td></tr></tbody></table>'
)


def test_lab_panels_are_told_apart_by_markup_then_structure() -> None:
    assert parse_table(LAB, "inline_table_1.html").kind == "lab-panel"
    bare = LAB.replace(' className="lab-values table"', "").replace("labValueCell", "cell")
    t = parse_table(bare, "inline_table_2.html")
    assert (t.kind, t.kind_reason) == ("lab-panel", "name/value/flag structure")
    # the same name/value structure, but a clinical table's id or title: clinical
    assert parse_table(bare, "xxtab24004.html").kind == "clinical"
    assert parse_table(bare, "inline_table_2.html", titled=True).kind == "clinical"


def test_a_clinical_table_without_thead_stays_clinical() -> None:
    html = (EXAMPLES / "en" / "enmcq24101" / "tables" / "entab24101.html").read_text(encoding="utf-8")
    untitled = parse_table(html, "table.html")  # no id, no metadata: structure alone
    assert untitled.kind == "clinical" and untitled.header_rows == [] and len(untitled.rows) == 5
    assert untitled.rows[0][0] == "Hemoglobin A1c"
    prose = [["Fasting glucose", "≥126 mg/dL after at least 8 hours without caloric intake"]]
    assert not looks_like_lab_panel("Criteria", [], prose)
    assert classify([], "table.html", "Laboratory studies", [], [["Sodium", "131 mEq/L", "L"]], False)[0] == "lab-panel"


@st.composite
def span_tables(draw: st.DrawFn) -> tuple[str, int]:
    width = draw(st.integers(1, 4))
    body = []
    for r in range(draw(st.integers(1, 4))):
        cells = [_cell(f"r{r}c{c}", rows=draw(st.integers(1, 3)), cols=draw(st.integers(1, 2))) for c in range(width)]
        body.append("<tr>" + "".join(cells) + "</tr>")
    head = "<thead><tr>" + "".join(_cell(f"h{c}", "th") for c in range(width)) + "</tr></thead>"
    return f"<table>{head if draw(st.booleans()) else ''}<tbody>{''.join(body)}</tbody></table>", width


@settings(max_examples=200, deadline=None)
@given(span_tables())
def test_any_span_layout_gives_a_rectangular_grid(case: tuple[str, int]) -> None:
    html, width = case
    t = parse_table(html, "xxtab24005.html")
    assert len({len(r) for r in t.rows}) <= 1  # every row as wide as the grid
    assert all(len(r) >= width for r in t.rows)
    seen = " ".join([*(c for r in t.rows for c in r), *t.sections])
    for label in re.findall(r"r\d+c\d+", html):  # every cell's text is kept (a row or a group label)
        assert label in seen


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_the_table_parser_never_crashes(markup: str) -> None:
    parse_table(markup, "x.html")


# -- the nlp stage's model option: a path resolves against the config file naming it --------


def nlp_model(**kw: Any) -> str:
    return load_settings(**kw).settings.plugin_options("nlp", NlpOptions).model


def test_a_relative_nlp_model_path_resolves_against_the_config_file(isolated_env: Path) -> None:
    config_dir = isolated_env / "conf"
    config_dir.mkdir()
    user = config_dir / "config.toml"
    user.write_text('[plugins.nlp]\nmodel = "models/sci"\n', encoding="utf-8")
    other = isolated_env / "elsewhere"
    other.mkdir()
    assert nlp_model(cwd=other, env={"MKSAP_USER_CONFIG": str(user)}) == str(config_dir / "models" / "sci")
    (other / "mksap.toml").write_text('[plugins.nlp]\nmodel = "./m"\n', encoding="utf-8")
    assert nlp_model(cwd=other, env={}) == str(other.resolve() / "m")
    assert nlp_model(cwd=other, env={"MKSAP_NLP_MODEL": "en_core_sci_md"}) == "en_core_sci_md"


def test_a_setting_that_moved_into_a_plugin_says_where_it_went(isolated_env: Path) -> None:
    (isolated_env / "mksap.toml").write_text('nlp_model = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"'nlp_model' is now \[plugins.nlp\] model"):
        load_settings(cwd=isolated_env, env={})


def test_an_unknown_plugin_option_lists_the_valid_ones(isolated_env: Path) -> None:
    (isolated_env / "mksap.toml").write_text('[plugins.nlp]\nmodle = "x"\n', encoding="utf-8")
    settings = load_settings(cwd=isolated_env, env={}).settings
    with pytest.raises(ConfigError, match=r"\[plugins.nlp\]: unknown option\(s\) modle; valid: model"):
        settings.plugin_options("nlp", NlpOptions)


def test_parse_skips_and_counts_lab_panels(built) -> None:  # type: ignore[no-untyped-def]
    parsed = json.loads(built.artifact("enmcq24101", "parse").read_text(encoding="utf-8"))
    assert [t["file"] for t in parsed["tables"]] == ["entab24101.html"]
    assert parsed["skipped_tables"] == ["inline_table_1.html"]
    assert "<i>" not in json.loads(built.artifact("idmcq24101", "parse").read_text(encoding="utf-8"))["objective"]
