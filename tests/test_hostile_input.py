"""Hostile input, bounded: every crafted input fails its own question with one line saying
what is wrong (a limit names itself and how to raise it), beside good questions that build;
the inputs are never changed; and the bank's own oddities (symlink loops, ids in two folders,
symlinks out of the bank, a system or question folder given as --data, stray files) never
stop discovery.

The pathological inputs are only as big as it takes to pass a limit: the default limits are
2 MB of question JSON, 200,000 characters of critique, 1 MB of table, 20,000 table cells and
100 levels of nesting (`Settings.max_*`)."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mksap_plugins.stages import nlp_rules
from mksap_plugins.stages.nlp_rules import _LIST, analyse, list_items
from mksap_plugins.stages.sentences import MAX_SENTENCE_CHARS, chop, split_sentences
from tests.conftest import EXAMPLES, Workspace, example_qids, hash_tree, load_json, summary_line

N = len(example_qids())
TABLE_Q = "cvmcq24102"  # has one clinical table, tables/cvtab24101.html


@dataclass
class Hostile:
    """One crafted input. `words`: a regex its one-line failure must match; `total`: the
    questions the run counts; `fix`: what makes it build (None: nothing short of deleting it)."""

    qid: str
    words: str
    total: int = N
    fix: Callable[[pytest.MonkeyPatch], None] | None = None


def _doc(ws: Workspace, qid: str) -> dict:
    return load_json(ws.question_json(qid))


def _write(ws: Workspace, qid: str, doc: dict | str) -> None:
    text = doc if isinstance(doc, str) else json.dumps(doc, indent=2, ensure_ascii=False)
    ws.question_json(qid).write_text(text, encoding="utf-8")


def _raise(variable: str, value: int) -> Callable[[pytest.MonkeyPatch], None]:
    def fix(monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(variable, str(value))

    return fix


# -- limits -----------------------------------------------------------------------------------


def span_bomb(ws: Workspace) -> Hostile:
    """400 cells of rowspan=50 colspan=50: 12 KB of markup, a million grid slots unbounded."""
    cell = '<td rowSpan="50" colSpan="50"><p>x</p></td>'
    rows = "".join(f"<tr>{cell * 20}</tr>" for _ in range(20))
    (ws.data / "cv" / TABLE_Q / "tables" / "cvtab24101.html").write_text(
        f'<table className="table"><tbody>{rows}</tbody></table>', encoding="utf-8"
    )
    return Hostile(TABLE_Q, r"cvtab24101\.html is more than 20,000 cells.*max_table_cells limit.*MKSAP_MAX_TABLE_CELLS")


def big_table(ws: Workspace) -> Hostile:
    table = ws.data / "cv" / TABLE_Q / "tables" / "cvtab24101.html"
    markup = table.read_text(encoding="utf-8")
    table.write_text(markup + "<!--" + "x" * 1_000_000 + "-->", encoding="utf-8")
    return Hostile(
        TABLE_Q,
        r"cvtab24101\.html is 1,00\d,\d{3} bytes, over the max_table_bytes limit of 1,000,000",
        fix=_raise("MKSAP_MAX_TABLE_BYTES", 2_000_000),
    )


def spanned_text(ws: Workspace) -> Hostile:
    """A small table whose one cell, repeated by its spans, makes a huge artifact."""
    cell = f'<td rowSpan="50" colSpan="50"><p>{"word " * 2_000}</p></td>'
    (ws.data / "cv" / TABLE_Q / "tables" / "cvtab24101.html").write_text(
        f'<table className="table"><tbody><tr>{cell}</tr>{"<tr><td>a</td></tr>" * 49}</tbody></table>',
        encoding="utf-8",
    )
    return Hostile(TABLE_Q, r"more than 1,000,000 characters of cell text.*max_table_bytes")


def long_critique(ws: Workspace) -> Hostile:
    qid = "enmcq24101"
    doc = _doc(ws, qid)
    doc["critique"] = ("Aspirin lowers risk " * 10_001)[:200_001]
    _write(ws, qid, doc)
    return Hostile(
        qid,
        r"the critique is 200,001 characters, over the max_critique_chars limit of 200,000",
        fix=_raise("MKSAP_MAX_CRITIQUE_CHARS", 300_000),
    )


def big_question(ws: Workspace) -> Hostile:
    qid = "gimcq24101"
    doc = _doc(ws, qid)
    doc["padding"] = "x" * 2_000_000  # another field: kept as it is, but the file is over the limit
    _write(ws, qid, doc)
    return Hostile(
        qid,
        r"is 2,0\d\d,\d{3} bytes, over the max_question_bytes limit of 2,000,000",
        fix=_raise("MKSAP_MAX_QUESTION_BYTES", 3_000_000),
    )


def deep_nesting(ws: Workspace) -> Hostile:
    """1,200 nested brackets: past the interpreter's recursion limit (the file checker and
    `mksap status` used to crash on it)."""
    qid = "idmcq24101"
    text = ws.question_json(qid).read_text(encoding="utf-8")
    _write(ws, qid, text.replace('"question_id"', '"deep": ' + "[" * 1200 + "]" * 1200 + ', "question_id"', 1))
    return Hostile(qid, r"nested too deeply to read \(far more than the max_nesting limit of 100 levels\)")


def nesting_past_the_limit(ws: Workspace) -> Hostile:
    qid = "idmcq24102"
    doc = _doc(ws, qid)
    deep: list = []
    for _ in range(150):
        deep = [deep]
    doc["deep"] = deep
    _write(ws, qid, doc)
    return Hostile(
        qid, r"nested more than 100 levels deep, over the max_nesting limit", fix=_raise("MKSAP_MAX_NESTING", 200)
    )


# -- shapes -------------------------------------------------------------------------------------


def not_a_number(ws: Workspace) -> Hostile:
    qid = "npmcq24101"
    text = ws.question_json(qid).read_text(encoding="utf-8")
    _write(ws, qid, text.replace('"question_id"', '"score": NaN, "question_id"', 1))
    return Hostile(qid, r"holds the number NaN, which JSON does not allow")


def infinity(ws: Workspace) -> Hostile:
    qid = "npmcq24102"
    text = ws.question_json(qid).read_text(encoding="utf-8")
    _write(ws, qid, text.replace('"question_id"', '"score": -Infinity, "question_id"', 1))
    return Hostile(qid, r"holds the number -Infinity")


def half_a_surrogate_pair(ws: Workspace) -> Hostile:
    qid = "idcor25101"
    text = ws.question_json(qid).read_text(encoding="utf-8")
    _write(ws, qid, text.replace('"question_id"', '"note": "\\ud800", "question_id"', 1))
    return Hostile(qid, r"holds the escape \\ud800, half of a surrogate pair")


def media_as_a_list(ws: Workspace) -> Hostile:
    doc = _doc(ws, TABLE_Q)
    doc["media"] = ["tables/cvtab24101.html"]
    _write(ws, TABLE_Q, doc)
    return Hostile(TABLE_Q, r"'media' must be an object, found a list")


def media_tables_not_a_list(ws: Workspace) -> Hostile:
    doc = _doc(ws, TABLE_Q)
    doc["media"]["tables"] = "tables/cvtab24101.html"
    _write(ws, TABLE_Q, doc)
    return Hostile(TABLE_Q, r"'media.tables' must be a list, found a string")


def metadata_entry_not_an_object(ws: Workspace) -> Hostile:
    doc = _doc(ws, TABLE_Q)
    doc["media_metadata"]["tables"] = ["cvtab24101"]
    _write(ws, TABLE_Q, doc)
    return Hostile(TABLE_Q, r"media_metadata.tables must hold one object per table")


def fullwidth_digits(ws: Workspace) -> Hostile:
    fake = "cvmcq２４１０１"  # fullwidth digits: `\d` would take them
    src = ws.data / "cv" / "cvmcq24101"
    folder = ws.data / "cv" / fake
    shutil.copytree(src, folder)
    text = (folder / "cvmcq24101.json").read_text(encoding="utf-8").replace("cvmcq24101", fake)
    (folder / "cvmcq24101.json").unlink()
    (folder / f"{fake}.json").write_text(text, encoding="utf-8")
    return Hostile(fake, r"is not a question id like cvmcq24001", total=N + 1)


def json_symlink_out_of_the_folder(ws: Workspace) -> Hostile:
    qid = "dmvdx24101"
    outside = ws.root / "elsewhere.json"
    shutil.move(ws.question_json(qid), outside)
    ws.question_json(qid).symlink_to(outside)
    return Hostile(qid, r"a symlink to .*elsewhere\.json, outside the question folder; refused")


# -- the bank's own oddities --------------------------------------------------------------------


def symlink_loop(ws: Workspace) -> Hostile:
    (ws.data / "cv" / "cvmcq24199").symlink_to("cvmcq24199")
    return Hostile("cvmcq24199", r"cannot be read \(Too many levels of symbolic links\)", total=N + 1)


def same_id_in_two_systems(ws: Workspace) -> Hostile:
    shutil.copytree(ws.data / "cv" / "cvmcq24101", ws.data / "en" / "cvmcq24101")
    return Hostile("cvmcq24101", r"question id cvmcq24101 is in 2 folders: .*/cv/cvmcq24101 and .*/en/cvmcq24101")


def folder_symlinked_out_of_the_bank(ws: Workspace) -> Hostile:
    qid = "encor25101"
    outside = ws.root / "outside" / qid
    shutil.move(ws.data / "en" / qid, outside.parent.mkdir() or outside)
    (ws.data / "en" / qid).symlink_to(outside)
    return Hostile(qid, r"a symlink to .*/outside/encor25101, outside the bank .*; refused")


def question_file_one_level_up(ws: Workspace) -> Hostile:
    shutil.copyfile(ws.question_json("npcor25101"), ws.data / "np" / "npcor25199.json")
    return Hostile(
        "npcor25199",
        r"npcor25199\.json: not in a folder of its own; move it to .*/np/npcor25199/npcor25199\.json",
        total=N + 1,
    )


CASES = [
    span_bomb,
    big_table,
    spanned_text,
    long_critique,
    big_question,
    deep_nesting,
    nesting_past_the_limit,
    not_a_number,
    infinity,
    half_a_surrogate_pair,
    media_as_a_list,
    media_tables_not_a_list,
    metadata_entry_not_an_object,
    fullwidth_digits,
    json_symlink_out_of_the_folder,
    symlink_loop,
    same_id_in_two_systems,
    folder_symlinked_out_of_the_bank,
    question_file_one_level_up,
]


@pytest.mark.parametrize("craft", CASES, ids=[c.__name__ for c in CASES])
def test_a_hostile_input_fails_alone_with_one_line(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, craft: Callable[[Workspace], Hostile]
) -> None:
    hostile = craft(ws)
    inputs = hash_tree(ws.data)

    result = ws.cli("run", "-q")

    assert result.code == 1, result.text
    assert "Traceback" not in result.text
    failed = [line for line in result.err.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1, result.err
    assert failed[0].startswith(f"FAILED {hostile.qid} (parse): "), failed
    assert re.search(hostile.words, failed[0]), failed[0]
    assert summary_line(result.err).startswith(
        f"{hostile.total - 1} built, 0 up to date, 1 failed ({hostile.total} questions)"
    )
    assert hash_tree(ws.data) == inputs, "a run changed the input"
    assert not (ws.build_dir / "errors.log").exists(), "a hostile input is expected, not an error to log"

    status = ws.cli("status", "--json")  # never crashes on it, and gives the same reason
    assert status.code == 0, status.text
    data = json.loads(status.out)["data"]
    (failure,) = data["failures"]
    assert failure["qid"] == hostile.qid and failure["reason"] == failed[0].split("(parse): ", 1)[1]

    if hostile.fix is not None:  # the line says how to raise the limit: doing so builds it
        hostile.fix(monkeypatch)
        fixed = ws.cli("run", "-q")
        assert fixed.code == 0, fixed.text
        assert summary_line(fixed.err).startswith(f"1 built, {N - 1} up to date, 0 failed")
        assert hash_tree(ws.data) == inputs


def test_in_place_never_rewrites_a_refused_file(ws: Workspace) -> None:
    """`NaN` used to come back as `null` in the input file itself with --in-place."""
    not_a_number(ws)
    path = ws.question_json("npmcq24101")
    before = path.read_bytes()
    result = ws.cli("run", "-q", "--in-place")
    assert result.code == 1 and "holds the number NaN" in result.err, result.text
    assert path.read_bytes() == before


def test_a_limit_lowered_in_config_reruns_parse_and_fails_what_is_over_it(
    built: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = built
    monkeypatch.setenv("MKSAP_MAX_CRITIQUE_CHARS", "500")
    result = ws.cli("run", "-q")
    assert result.code == 1, result.text
    over = [line for line in result.err.splitlines() if line.startswith("FAILED")]
    assert over and all("max_critique_chars limit of 500" in line for line in over)
    monkeypatch.delenv("MKSAP_MAX_CRITIQUE_CHARS")
    assert ws.cli("run", "-q").code == 0


# -- --data naming a system or a question folder; stray files ------------------------------------


def _run_at(ws: Workspace, data: Path) -> tuple[int, str]:
    result = ws.cli(
        "run", "-q", "--data", str(data), "--out", str(ws.out), "--cache-dir", str(ws.cache), locations=False
    )
    return result.code, result.err


@pytest.mark.parametrize(
    ("folder", "expected"),
    [("cv", 3), ("gi", 1), ("cv/cvmcq24102", 1)],
    ids=["system", "one-question-system", "question"],
)
def test_data_may_name_a_system_or_a_question_folder(ws: Workspace, folder: str, expected: int) -> None:
    code, err = _run_at(ws, ws.data / folder)
    assert code == 0, err
    assert summary_line(err).startswith(f"{expected} built, 0 up to date, 0 failed")
    system = folder[:2]
    built = sorted(p.relative_to(ws.out).parts[0] for p in ws.out.glob("*/*/*.json"))
    assert built == [system] * expected


def test_stray_files_beside_system_folders_are_ignored(ws: Workspace) -> None:
    (ws.data / "tables.json").write_text("{}", encoding="utf-8")
    (ws.data / "cv" / "notes.txt").write_text("not a question", encoding="utf-8")
    (ws.data / "cv" / "cvmcq24101" / "tables").mkdir()
    (ws.data / "cv" / "cvmcq24101" / "tables" / "stray.json").write_text("{}", encoding="utf-8")
    result = ws.cli("run", "-q")
    assert result.code == 0, result.text
    assert summary_line(result.err).startswith(f"{N} built, 0 up to date, 0 failed ({N} questions)")


def test_fullwidth_digits_are_not_a_question_id_on_the_command_line(ws: Workspace) -> None:
    result = ws.cli("run", "cvmcq２４１０１")
    assert result.code == 2 and "neither a system code" in result.err, result.text


# -- the rule-based nlp tier is linear: bounded units ---------------------------------------------


def test_the_splitter_caps_a_sentence_with_no_breaks() -> None:
    text = ("aspirin lowers the risk of stroke e.g. In trials " * 4_000)[:200_000]  # no sentence end at all
    sentences = split_sentences(text)
    assert sentences and max(len(s) for s in sentences) <= MAX_SENTENCE_CHARS
    assert len(sentences) >= len(text) // MAX_SENTENCE_CHARS
    assert " ".join(sentences) == " ".join(text.split())  # nothing lost, nothing added
    assert split_sentences(" ".join(sentences)) == sentences  # still idempotent


def test_chop_cuts_at_spaces_within_the_limit_and_hard_cuts_a_long_token() -> None:
    assert chop("a" * 25, 10) == ["a" * 10, "a" * 10, "a" * 5]
    assert chop("one two three four", 9) == ["one two", "three", "four"]
    pieces = chop("word " * 1000, 100)
    assert all(len(p) <= 100 for p in pieces) and chop(" ".join(pieces), 100) == pieces


def test_the_rules_only_ever_see_bounded_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """However long a text the nlp stage is given (a 200,000-character key point with no
    breaks), each rule runs on pieces of at most MAX_SENTENCE_CHARS: the work is linear."""
    seen: list[int] = []
    for name in ("abbreviation_pairs", "negated_spans", "case_wording", "atomicity_hints", "phrases"):
        original = getattr(nlp_rules, name)

        def spy(text: str, *args: object, _original: Callable = original) -> object:
            seen.append(len(text))
            return _original(text, *args)

        monkeypatch.setattr(nlp_rules, name, spy)
    text = ("no fever, not hypoxic, left bundle branch block (LBBB), aspirin, heparin, and warfarin " * 2_500)[:200_000]
    info = analyse(text)
    assert max(seen) <= MAX_SENTENCE_CHARS and sum(seen) >= 5 * len(text) * 0.95
    assert info.text == text and info.abbreviations and info.negations


def test_the_list_hint_finds_what_the_regex_finds_in_one_pass() -> None:
    pieces = ["a", "b", " ", ",", ", ", ";", "(", ")", ":", "and ", "or ", " and c", "\t", ",\n", "x y"]
    import random

    rng = random.Random(7)
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        m = _LIST.search(text)
        assert list_items(text) == (m.group(0).count(",") + 1 if m else None), repr(text)
    long = "item, " * 40_000 + "and last"  # the regex: quadratic; this: one pass
    assert list_items(long) == 40_001


def test_checker_digests_a_deeply_nested_file_without_crashing(tmp_path: Path) -> None:
    from mksap.build.checker import source_digest

    folder = tmp_path / "cv" / "cvmcq24101"
    folder.mkdir(parents=True)
    path = folder / "cvmcq24101.json"
    path.write_text('{"question_id": "cvmcq24101", "deep": ' + "[" * 5000 + "]" * 5000 + "}", encoding="utf-8")
    assert source_digest(str(path))  # plain md5 of the bytes
    path.write_text('{"question_id": "cvmcq24101", "bad": "\\ud800"}', encoding="utf-8")  # a lone surrogate
    assert source_digest(str(path))


def test_examples_are_within_every_default_limit() -> None:
    from mksap.settings import Settings

    limits = Settings()
    for path in EXAMPLES.glob("*/*/*.json"):
        assert os.path.getsize(path) < limits.max_question_bytes / 10
        assert len(load_json(path)["critique"]) < limits.max_critique_chars / 10
