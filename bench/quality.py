"""Statement quality on the bundled examples and on ../shared/reference read as input.

For each data set, with the offline provider and with the LLM path (the real anthropic provider
and SDK against the fake Messages API server, once with sensible answers and once with seeded
defects): statements per question, words per statement, cloze candidates per statement (and
the share that occur verbatim), findings by code, repairs, statements with case-specific wording
or source references in the output (goal 0), clinical tables used and lab panels skipped.
For the reference set, the same numbers for the earlier tool's output fields as a baseline.
Prints markdown; never prints question text.

    .venv/bin/python bench/quality.py [--reference DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mksap.cli import main  # noqa: E402
from mksap.contracts.output import OutputDocument  # noqa: E402
from mksap.reports.quality import QualityStats, stats_of  # noqa: E402
from mksap_plugins.stages.wording import case_wording  # noqa: E402
from tests.fakes.anthropic_server import FakeAnthropicServer  # noqa: E402
from tests.fakes.stage_answers import stage_responder  # noqa: E402

SEED_CASE = "In this patient, the treatment described above is the preferred choice for the condition."
SEED_NUMBER = "Treatment should begin within 97 hours of the first symptom."


def seeded(payload: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """Seed two defects per question (case wording, an invented number) and a non-verbatim
    candidate per statement; the repair round fixes the case wording only."""
    if payload.get("source") == "critique":
        answer["statements"] += [
            {"statement": SEED_CASE, "extra_field": None, "source_index": 0},
            {"statement": SEED_NUMBER, "extra_field": None, "source_index": 0},
        ]
    elif "statements" in payload and "sentences" not in payload:
        for item in answer["items"]:
            item["cloze_candidates"].insert(0, "greater than or equal to")
    elif "items" in payload:
        for item in answer["items"]:
            if item["statement"] == SEED_CASE:
                item["statement"] = "A preferred treatment choice depends on the condition being treated."
    return answer


@contextlib.contextmanager
def environment(root: Path, extra: dict[str, str]) -> Iterator[None]:
    """An isolated HOME / user config / cache, and no MKSAP_* or ANTHROPIC_* from the caller."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(("MKSAP_", "ANTHROPIC_")):
            del os.environ[name]
    os.environ.update(
        HOME=str(root / "home"),
        XDG_CACHE_HOME=str(root / "home" / ".cache"),
        MKSAP_USER_CONFIG=str(root / "none.toml"),
        MKSAP_LLM_CACHE_DIR=str(root / "llm"),
        **extra,
    )
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def build(data: Path, work: Path, extra: dict[str, str]) -> list[dict[str, Any]]:
    """Run `mksap run` on a copy of `data`; the built documents."""
    shutil.rmtree(work, ignore_errors=True)
    copy = work / "data"
    shutil.copytree(data, copy, ignore=shutil.ignore_patterns("*.md"))
    with environment(work, extra), contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(["run", "-q", "--data", str(copy), "--out", str(work / "out"), "--cache-dir", str(work / "c")])
    if code != 0:
        raise SystemExit(f"mksap run failed on {data} ({code}):\n{err.getvalue()[-1500:]}")
    return [OutputDocument.read(p) for p in sorted((work / "out").glob("*/*/*.json"))]


def wording_count(docs: list[OutputDocument]) -> int:
    """Output statements with case-specific wording or a source reference, by the patterns
    themselves (not by the findings a build recorded)."""
    return sum(bool(case_wording(s.statement)) for d in docs for s, rejected in d.statements() if not rejected)


def row(name: str, s: QualityStats, wording: int) -> str:
    repairs = f"{s.repaired}/{s.repair_attempted}" if s.repair_attempted else "-"
    return (
        f"| {name} | {s.questions} | {s.statements_per_question:.1f} | {s.words_median:g} / {s.words_p90:g} | "
        f"{s.candidates_per_statement:.2f} | {s.candidates_verbatim_pct:.1f}% | {wording} | {repairs} | "
        f"{s.rejected} | {s.passing_pct:.1f}% | {s.clinical_tables} / {s.lab_panels_skipped} |"
    )


def findings_line(name: str, s: QualityStats) -> str:
    codes = ", ".join(f"{code} {n}" for code, n in s.findings_by_code.items()) or "none"
    return f"- **{name}**: {codes}"


def earlier_tool(reference: Path) -> list[OutputDocument]:
    """The reference files' own output fields (the earlier tool wrote no ids: positional ones)."""
    docs = []
    for path in sorted(reference.glob("*/*/*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if "true_statements" in doc:
            docs.append(OutputDocument.model_validate(doc))
    return docs


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=ROOT.parent / "shared" / "reference")
    args = parser.parse_args()
    sets = {"examples": ROOT / "examples"}
    if args.reference.is_dir():
        sets["reference"] = args.reference
    tmp = Path(tempfile.mkdtemp(prefix="mksap-quality-"))
    results: list[tuple[str, QualityStats, int]] = []
    try:
        for label, data in sets.items():
            docs = build(data, tmp / f"{label}-offline", {"MKSAP_PROVIDER": "offline"})
            results.append((f"{label} · offline", stats_of(docs), wording_count(docs)))
            for kind, tweak in (("fake LLM", None), ("fake LLM, seeded defects", seeded)):
                with FakeAnthropicServer(responder=stage_responder(tweak=tweak)) as server:
                    env = {"MKSAP_PROVIDER": "anthropic", "ANTHROPIC_API_KEY": "fake", "ANTHROPIC_BASE_URL": server.url}
                    docs = build(data, tmp / f"{label}-{kind}", env)
                results.append((f"{label} · {kind}", stats_of(docs), wording_count(docs)))
            if label == "reference":
                before = earlier_tool(data)
                results.append(("reference · earlier tool's output", stats_of(before), wording_count(before)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        "| run | questions | statements/question | words median / p90 | candidates/statement | "
        "candidates verbatim | case/source wording in output | repaired | rejected | passing | "
        "clinical tables / lab panels skipped |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, stats, wording in results:
        print(row(name, stats, wording))
    print("\nFindings by code (output and rejected statements):\n")
    for name, stats, _ in results:
        print(findings_line(name, stats))


if __name__ == "__main__":
    main_bench()
