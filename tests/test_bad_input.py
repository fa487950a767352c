"""Bad input never stops the others: each broken question fails with a one-line reason naming
its file, every other question builds, the summary counts it, the exit code is 1; once the
file is fixed the next run builds it and exits 0."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, Workspace, example_qids, hash_tree, load_json, summary_line

N = len(example_qids())


@dataclass
class Breakage:
    """Breaks one question; `fix` repairs it; `named` is the path the reason must name."""

    qid: str
    named: Path
    words: str  # a regex the one-line reason must match
    fix: Callable[[], None]


def _restore(ws: Workspace, qid: str) -> Callable[[], None]:
    def fix() -> None:
        shutil.copyfile(EXAMPLES / qid[:2] / qid / f"{qid}.json", ws.question_json(qid))

    return fix


def _edit(ws: Workspace, qid: str, change: Callable[[dict], None]) -> None:
    path = ws.question_json(qid)
    doc = load_json(path)
    change(doc)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")


def invalid_json(ws: Workspace) -> Breakage:
    qid = "cvmcq24101"
    path = ws.question_json(qid)
    path.write_text(path.read_text(encoding="utf-8")[:-40], encoding="utf-8")
    return Breakage(qid, path, r"invalid JSON", _restore(ws, qid))


def missing_critique(ws: Workspace) -> Breakage:
    qid = "enmcq24102"
    _edit(ws, qid, lambda d: d.pop("critique"))
    return Breakage(qid, ws.question_json(qid), r"critique", _restore(ws, qid))


def id_not_matching_folder(ws: Workspace) -> Breakage:
    qid = "gimcq24101"
    _edit(ws, qid, lambda d: d.update(question_id="gimcq24999"))
    return Breakage(
        qid, ws.question_json(qid), r"gimcq24999.*gimcq24101|does not match", _restore(ws, qid)
    )


def table_missing(ws: Workspace) -> Breakage:
    qid = "cvmcq24102"
    table = ws.question_json(qid).parent / "tables" / "cvtab24101.html"
    original = table.read_bytes()
    table.unlink()

    def fix() -> None:
        table.write_bytes(original)

    return Breakage(qid, ws.question_json(qid), r"cvtab24101\.html.*missing", fix)


def empty_file(ws: Workspace) -> Breakage:
    qid = "idmcq24101"
    ws.question_json(qid).write_bytes(b"")
    return Breakage(qid, ws.question_json(qid), r"empty", _restore(ws, qid))


def not_utf8(ws: Workspace) -> Breakage:
    qid = "npmcq24101"
    path = ws.question_json(qid)
    text = path.read_text(encoding="utf-8")
    assert any(ord(c) > 127 for c in text)
    path.write_bytes(text.encode("latin-1", errors="replace"))
    return Breakage(qid, path, r"UTF-8", _restore(ws, qid))


def not_a_system(ws: Workspace) -> Breakage:
    src = EXAMPLES / "cv" / "cvmcq24101"
    folder = ws.data / "zz" / "zzmcq24001"
    shutil.copytree(src, folder)
    text = (
        (folder / "cvmcq24101.json").read_text(encoding="utf-8").replace("cvmcq24101", "zzmcq24001")
    )
    (folder / "cvmcq24101.json").unlink()
    (folder / "zzmcq24001.json").write_text(text, encoding="utf-8")

    def fix() -> None:
        shutil.rmtree(ws.data / "zz")

    return Breakage("zzmcq24001", folder / "zzmcq24001.json", r"system", fix)


def media_outside_folder(ws: Workspace) -> Breakage:
    qid = "cvmcq24101"
    other = ws.data / "other"
    other.mkdir()
    (other / "x.html").write_text("<table><tr><td>secret</td></tr></table>", encoding="utf-8")

    def change(doc: dict) -> None:
        doc["media"] = {**(doc.get("media") or {}), "tables": ["../../other/x.html"]}

    _edit(ws, qid, change)
    return Breakage(
        qid, ws.question_json(qid), r"outside.*refused|refused.*outside", _restore(ws, qid)
    )


CASES = [
    invalid_json,
    missing_critique,
    id_not_matching_folder,
    table_missing,
    empty_file,
    not_utf8,
    not_a_system,
    media_outside_folder,
]


@pytest.mark.parametrize("breakage", CASES, ids=[c.__name__ for c in CASES])
def test_bad_question_fails_alone_then_builds_when_fixed(
    ws: Workspace, breakage: Callable[[Workspace], Breakage]
) -> None:
    broken = breakage(ws)
    total = len(ws.qids()) if broken.qid != "zzmcq24001" else N + 1
    inputs_before = hash_tree(ws.data)

    result = ws.cli("run", "-q")

    assert result.code == 1, result.text
    assert "Traceback" not in result.text
    failed = [line for line in result.err.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1, result.err
    line = failed[0]
    assert broken.qid in line
    assert str(broken.named) in line, f"the reason does not name {broken.named}: {line}"
    assert re.search(broken.words, line, re.IGNORECASE), line
    assert re.search(r"^\d+ built, 0 up to date, 1 failed", summary_line(result.err)), result.err
    assert summary_line(result.err).startswith(
        f"{total - 1} built, 0 up to date, 1 failed ({total} questions)"
    )
    built = {p.parent.name for p in ws.out.glob("*/*/*.json")}
    assert broken.qid not in built
    assert len(built) == total - 1
    assert hash_tree(ws.data) == inputs_before, "a failed run modified the input"

    # status agrees and gives the same one-line reason
    status = ws.cli("status", "--json")
    data = json.loads(status.out)["data"]
    if broken.qid in data["questions"]:
        assert data["questions"][broken.qid] == "failed"
        (failure,) = data["failures"]
        assert failure["qid"] == broken.qid and str(broken.named) in failure["reason"]

    # a rerun without a fix fails again the same way (and nothing else reruns)
    again = ws.cli("run", "-q")
    assert again.code == 1
    assert summary_line(again.err).startswith(f"0 built, {total - 1} up to date, 1 failed")

    broken.fix()
    fixed = ws.cli("run", "-q")
    assert fixed.code == 0, fixed.text
    expected_built = 0 if broken.qid == "zzmcq24001" else 1
    assert summary_line(fixed.err).startswith(
        f"{expected_built} built, {N - expected_built} up to date, 0 failed ({N} questions)"
    )
    assert not any(line.startswith("FAILED") for line in fixed.err.splitlines())
    assert len(list(ws.out.glob("*/*/*.json"))) == N
    status = json.loads(ws.cli("status", "--json").out)["data"]
    assert status["failures"] == [] and set(status["questions"].values()) == {"up-to-date"}


def test_non_question_folders_and_files_are_ignored_by_discovery(ws: Workspace) -> None:
    (ws.data / ".hidden").mkdir()
    (ws.data / "_scratch").mkdir()
    (ws.data / "notes.txt").write_text("not a question", encoding="utf-8")
    result = ws.cli("run", "-q")
    assert result.code == 0, result.text
    assert summary_line(result.err).startswith(f"{N} built")


def test_missing_data_folder_is_a_clear_error(ws: Workspace) -> None:
    from mksap.cli import main

    code = main(
        ["run", "--data", str(ws.root / "nope"), "--out", str(ws.out), "--cache-dir", str(ws.cache)]
    )
    err = ws.capsys.readouterr().err
    assert code not in (0, 1)
    assert "nope" in err and "Traceback" not in err
