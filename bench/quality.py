"""Statement quality on the bundled examples and on ../shared/reference read as input.

For each data set, with the offline provider and with the LLM path (the real anthropic provider
and SDK against the fake Messages API server, once with sensible answers and once with seeded
defects):

1. the overall numbers: statements per question, words per statement, cloze candidates per
   statement (and the share verbatim), findings by code, repairs, clinical tables and lab
   panels;
2. the card defects of issue 10, each counted by a check of this file's own (its own patterns
   and word lists, never the production code that wrote or validated the statement): templated
   table sentences ("For X, the Y is Z." and "Label: text."), citations and figure/table
   pointers, answer framing, discourse-marker openings, generic subject-less openings, numbers
   cut from their comparator or unit in a candidate, nested and case-variant duplicate
   candidates, fragment candidates (ending or starting in a function word), generic-word
   candidates, empty Extra (critique / key point / table), and, in the Anki markup the exporter
   writes, a quantity and its restatement in other units ("≥200 mg/dL (11.1 mmol/L)") under
   different cloze numbers, and cloze numbers out of text order.

Data sets: the bundled examples, bench/fixtures/issue10 (two questions written for this bench
with the real bank's shapes the examples lack: slash values, HU, ms, ounces, "(shown)", figure
and table pointers, citations, units in a column label, yes/no cells, permission rows) and,
when present, the reference files. For the reference set, the same numbers for the earlier
tool's output fields as a baseline.
Prints markdown; never prints question text of the reference set. `--write` puts the numbers
into the "Statement quality" section of bench/RESULTS.md (keeping its hand-written read).
`--sample N` prints N offline statements of the examples (seeded) for a read by hand.

    .venv/bin/python bench/quality.py [--reference DIR] [--write] [--sample N]
"""

from __future__ import annotations

import argparse
import contextlib
import html
import io
import json
import os
import random
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "bench"))

from common import write_sections  # noqa: E402

from mksap.cli import main  # noqa: E402
from mksap.contracts.exporter import ExportStatement  # noqa: E402
from mksap.contracts.output import OutputDocument  # noqa: E402
from mksap.reports.quality import QualityStats, stats_of  # noqa: E402
from mksap_plugins.exporters.anki import cloze_text  # noqa: E402
from tests.fakes.anthropic_server import FakeAnthropicServer  # noqa: E402
from tests.fakes.stage_answers import stage_responder  # noqa: E402

SECTION = "Statement quality"
READ_HEADING = "### A read of 40 offline statements"
SEED_CASE = "In this patient, the treatment described above is the preferred choice for the condition."
SEED_NUMBER = "Treatment should begin within 97 hours of the first symptom."

# -- the bench's own judges ---------------------------------------------------------------------
# Written apart from mksap_plugins (wording.py, quantities.py, cloze.py), so a count can never
# pass because the code that made a statement grades itself.

FOR_TEMPLATE = re.compile(r"^For [^,]{1,120}, the [^.]{1,80}? (?:is|are) .+\.$")
LABEL_TEMPLATE = re.compile(r"^[A-Z][^:.;]{0,80}: [A-Za-z0-9<>≥≤]")
CITES = re.compile(
    r"\((?:see )?(?:e?table|e?figure|fig\.?|image)s?\b|\((?:not )?(?:shown|pictured)\)|\b(?:table|figure)s?:|"
    r"\bfigure \d|\btable \d|\bet al\b|\b(?:19|20)\d\d ?; ?\d+|\bdoi\b|\bPMID\b|\breprinted\b|\badapted from\b"
    r"|\bwith permission\b|©|\bcopyright\b|\bas shown\b",
    re.I,
)
FRAMING = re.compile(
    r"\bmost (?:likely|appropriate|probable) (?:\w+ ){0,3}(?:diagnosis|step|treatment|test|management|therapy"
    r"|explanation|option|choice|intervention)\b|\b(?:correct|best|right) (?:answer|option|choice|response)\b"
    r"|\boptions? [A-E]\b|\bnext step\b|\bis (?:the )?most likely\b|\bthe answer\b",
    re.I,
)
DISCOURSE = re.compile(
    r"^(?:however|additionally|also|moreover|furthermore|in addition|therefore|thus|similarly|likewise|conversely"
    r"|nevertheless|nonetheless|in contrast|by contrast|finally|notably|importantly|overall|hence|consequently"
    r"|instead|as a result|for example|in summary)\b",
    re.I,
)
SUBJECTLESS = re.compile(
    r"^(?:(?:the|this|these) (?:typical |usual |characteristic |initial |same )?(?:lesions?|dose|bolus|drug|agent"
    r"|condition|disorder|disease|syndrome|treatment|therapy|management|finding|findings|elevation|increase)\b"
    r"(?! (?:of|for|with|in)\b)|(?:treatment|management|therapy|lesions|it|they|these|this)\b(?! (?:of|for|with)\b))",
    re.I,
)
UNIT_WORDS = set(
    """% mg g kg μg mcg ng pg mmol μmol nmol pmol meq mosm l ml dl u iu mu μu mm cm m μm hg hu ms s sec min h hr
    hours hour days day d weeks week wk months month mo years year y oz ounce ounces lb lbs bpm points kcal
    °c °f gy""".split()
)
COMPARATOR_BEFORE = re.compile(
    r"(?:[<>≤≥]|\b(?:at least|at most|less than|more than|greater than|fewer than|up to|no more than|above|below"
    r"|younger than|older than))\s?$",
    re.I,
)
FUNCTION_WORDS = set(
    """a an the and or nor but of in on at to for from by with without into as than that which who when while if
    due is are was were be been has have had can may should must will would not no its their this these such
    also only vs once after before during""".split()
)
GENERIC_WORDS = set(
    """according diagnosis management treatment therapy patients patient disease diseases condition conditions
    test tests testing evaluation assessment finding findings result results risk use level levels symptoms
    signs features approach option options choice choices however also therefore appropriate effective
    recommended preferred common important abnormal normal initial first second""".split()
)
QUANTITY = r"(?:[<>≤≥])?\d+(?:[.,]\d+)?(?:\s?[–-]\s?\d+(?:\.\d+)?)?\s?(?:%|[A-Za-zμ]+(?:/[A-Za-zμ0-9.²³ ]+?)?)"
PAIRED = re.compile(
    rf"(?P<a>{QUANTITY})\s?[(\[](?P<b>\d+(?:[.,]\d+)?(?:\s?[–-]\s?\d+(?:\.\d+)?)?\s?[A-Za-zμ]+/[A-Za-zμ]+)[)\]]"
)
CLOZE = re.compile(r"\{\{c(\d+)::(.*?)\}\}", re.S)


def _occurrence(text: str, cand: str) -> int:
    """Start of the first whole-word occurrence of `cand`, or -1."""
    m = re.search(rf"(?<!\w){re.escape(cand)}(?!\w)", text)
    return m.start() if m else -1


def splits_quantity(text: str, cand: str) -> bool:
    """A candidate that leaves a number's unit or comparator outside (or takes a unit without
    its number): '<140' with '/90 mm Hg' after it, '30 mg/g' after '≥', '/90 mm Hg'."""
    start = _occurrence(text, cand)
    if start < 0:
        return False
    after, before = text[start + len(cand) :], text[:start]
    if re.search(r"\d$", cand):
        nxt = re.match(r"\s?(%|/\s?\d|/[A-Za-zμ]+|[A-Za-zμ°]+)", after)
        if nxt and (nxt.group(1).startswith(("%", "/")) or nxt.group(1).lower() in UNIT_WORDS):
            return True
        if re.match(r"\s?[–-]\s?\d", after):
            return True
    if re.match(r"\d", cand) and COMPARATOR_BEFORE.search(before):
        return True
    if re.match(r"(?:/|[A-Za-zμ]+(?:/|\b))", cand) and re.search(r"\d\s?$", before):
        first = re.match(r"/?([A-Za-zμ°]+)", cand)
        return cand.startswith("/") or bool(first and first.group(1).lower() in UNIT_WORDS)
    return False


def _folded_words(text: str) -> str:
    return " ".join(re.findall(r"[\w'’-]+", text.casefold()))


def nested(cands: list[str]) -> int:
    """Candidate pairs where one lies inside the other (whole words, any case), not equal."""
    folded = [_folded_words(c) for c in cands]
    count = 0
    for i, a in enumerate(folded):
        for j, b in enumerate(folded):
            if i != j and a != b and a and re.search(rf"(?<!\w){re.escape(a)}(?!\w)", b):
                count += 1
    return count


def duplicates(cands: list[str]) -> int:
    folded = [c.casefold().strip() for c in cands]
    return len(folded) - len(set(folded))


def fragment(cand: str) -> bool:
    words = re.findall(r"[\w'’-]+", cand.lower())
    return bool(words) and (words[-1] in FUNCTION_WORDS or words[0] in {"and", "or", "of", "to", "with", "due"})


def generic(cand: str) -> bool:
    words = re.findall(r"[\w'’-]+", cand.lower())
    return bool(words) and all(w in GENERIC_WORDS or w in FUNCTION_WORDS for w in words)


def cloze_problems(text: str, markup: str) -> tuple[int, bool]:
    """(paired quantities split across cloze numbers or half hidden, numbers out of text order)
    of one note's markup."""
    spans: list[tuple[int, int, int]] = []  # (start, end, number) in the plain text
    plain, pos = "", 0
    for m in CLOZE.finditer(markup):
        plain += html.unescape(markup[pos : m.start()])
        hidden = html.unescape(m.group(2))
        spans.append((len(plain), len(plain) + len(hidden), int(m.group(1))))
        plain += hidden
        pos = m.end()
    plain += html.unescape(markup[pos:])
    order = [n for _, _, n in spans]
    firsts = list(dict.fromkeys(order))
    out_of_order = firsts != sorted(firsts)

    def number_at(a: int, b: int) -> int | None:
        return next((n for s, e, n in spans if s <= a and b <= e), None)

    split = 0
    for m in PAIRED.finditer(text):
        na, nb = number_at(m.start("a"), m.end("a")), number_at(m.start("b"), m.end("b"))
        if (na is None) != (nb is None) or (na is not None and na != nb):
            split += 1
    return split, out_of_order


@dataclass
class Defects:
    statements: int = 0
    table_statements: int = 0
    templated: int = 0
    citations: int = 0
    framing: int = 0
    discourse: int = 0
    subjectless: int = 0
    unit_splits: int = 0
    nested: int = 0
    duplicates: int = 0
    fragments: int = 0
    generic: int = 0
    empty_extra: dict[str, int] = field(default_factory=lambda: {"critique": 0, "key_point": 0, "table": 0})
    by_source: dict[str, int] = field(default_factory=lambda: {"critique": 0, "key_point": 0, "table": 0})
    paired_split: int = 0
    out_of_order: int = 0


def defects_of(docs: list[OutputDocument]) -> Defects:
    d = Defects()
    for doc in docs:
        for s, rejected in doc.statements():
            if rejected:
                continue
            text, cands = s.statement, s.cloze_candidates
            d.statements += 1
            d.by_source[s.source] += 1
            if s.source == "table":
                d.table_statements += 1
                d.templated += bool(FOR_TEMPLATE.match(text) or LABEL_TEMPLATE.match(text))
            d.citations += bool(CITES.search(text))
            d.framing += bool(FRAMING.search(text))
            d.discourse += bool(DISCOURSE.match(text))
            d.subjectless += bool(SUBJECTLESS.match(text))
            d.unit_splits += sum(splits_quantity(text, c) for c in cands)
            d.nested += nested(cands)
            d.duplicates += duplicates(cands)
            d.fragments += sum(fragment(c) for c in cands)
            d.generic += sum(generic(c) for c in cands)
            d.empty_extra[s.source] += not (s.extra_field or "").strip()
            if cands:
                exported = ExportStatement(
                    question_id=doc.question_id,
                    system=doc.question_id[:2],
                    statement_id=s.id,
                    source=s.source,
                    statement=text,
                    cloze_candidates=cands,
                    findings=[],
                    flagged=False,
                )
                split, unordered = cloze_problems(text, cloze_text(exported)[0])
                d.paired_split += split
                d.out_of_order += unordered
    return d


# -- runs ----------------------------------------------------------------------------------------


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


def build(data: Path, work: Path, extra: dict[str, str]) -> list[OutputDocument]:
    """Run `mksap run` on a copy of `data`; the built documents."""
    shutil.rmtree(work, ignore_errors=True)
    copy = work / "data"
    shutil.copytree(data, copy, ignore=shutil.ignore_patterns("*.md"))
    with environment(work, extra), contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(["run", "-q", "--data", str(copy), "--out", str(work / "out"), "--cache-dir", str(work / "c")])
    if code != 0:
        raise SystemExit(f"mksap run failed on {data} ({code}):\n{err.getvalue()[-1500:]}")
    return [OutputDocument.read(p) for p in sorted((work / "out").glob("*/*/*.json"))]


def earlier_tool(reference: Path) -> list[OutputDocument]:
    """The reference files' own output fields (the earlier tool wrote no ids: positional ones)."""
    docs = []
    for path in sorted(reference.glob("*/*/*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if "true_statements" in doc:
            docs.append(OutputDocument.model_validate(doc))
    return docs


# -- report ----------------------------------------------------------------------------------------


def overall_row(name: str, s: QualityStats) -> str:
    repairs = f"{s.repaired}/{s.repair_attempted}" if s.repair_attempted else "-"
    return (
        f"| {name} | {s.questions} | {s.statements_per_question:.1f} | {s.words_median:g} / {s.words_p90:g} | "
        f"{s.candidates_per_statement:.2f} | {s.candidates_verbatim_pct:.1f}% | {repairs} | {s.rejected} | "
        f"{s.passing_pct:.1f}% | {s.clinical_tables} / {s.lab_panels_skipped} |"
    )


def defects_row(name: str, d: Defects) -> str:
    extra = "/".join(str(d.empty_extra[k]) for k in ("critique", "key_point", "table"))
    sources = "/".join(str(d.by_source[k]) for k in ("critique", "key_point", "table"))
    return (
        f"| {name} | {d.statements} ({sources}) | {d.templated} / {d.table_statements} | {d.citations} | {d.framing} | "
        f"{d.discourse} | {d.subjectless} | {d.unit_splits} | {d.nested} | {d.duplicates} | {d.fragments} | "
        f"{d.generic} | {extra} | {d.paired_split} | {d.out_of_order} |"
    )


def report(results: list[tuple[str, QualityStats, Defects]]) -> str:
    lines = [
        "| run | questions | statements/question | words median / p90 | candidates/statement | candidates verbatim "
        "| repaired | rejected | passing | clinical tables / lab panels skipped |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(overall_row(n, s) for n, s, _ in results),
        "",
        "Card defects, each counted by the bench's own check (not the code that made or validated the statement); "
        "output statements only (accepted, flagged included), candidates counted one by one:",
        "",
        "| run | statements (critique/key point/table) | templated table sentences | citations | answer framing "
        "| discourse openings | subject-less openings | number/unit splits | nested candidates | case duplicates "
        "| fragment candidates | generic candidates | empty Extra (c/k/t) | paired values split | cloze numbers out of "
        "text order |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(defects_row(n, d) for n, _, d in results),
        "",
        "Findings by code (output and rejected statements):",
        "",
    ]
    for name, stats, _ in results:
        codes = ", ".join(f"{code} {n}" for code, n in sorted(stats.findings_by_code.items())) or "none"
        lines.append(f"- **{name}**: {codes}")
    return "\n".join(lines)


def sample(docs: list[OutputDocument], n: int, seed: int = 10) -> list[tuple[str, Any]]:
    everything = [(d.question_id, s) for d in docs for s, rejected in d.statements() if not rejected]
    return random.Random(seed).sample(everything, min(n, len(everything)))


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=ROOT.parent / "shared" / "reference")
    parser.add_argument("--write", action="store_true", help="write the section into bench/RESULTS.md")
    parser.add_argument("--sample", type=int, default=0, help="print N offline statements of the examples and stop")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mksap-quality-"))
    try:
        if args.sample:
            docs = build(ROOT / "examples", tmp / "sample", {"MKSAP_PROVIDER": "offline"})
            for i, (qid, s) in enumerate(sample(docs, args.sample), 1):
                print(f"{i}. {qid} {s.id} [{s.source}] {s.statement} | {s.cloze_candidates} | Extra: {s.extra_field}")
            return
        sets = {"examples": ROOT / "examples", "issue-10 fixture": ROOT / "bench" / "fixtures" / "issue10"}
        if args.reference.is_dir():
            sets["reference"] = args.reference
        results: list[tuple[str, QualityStats, Defects]] = []
        for label, data in sets.items():
            if not data.is_dir():
                continue
            docs = build(data, tmp / f"{label}-offline", {"MKSAP_PROVIDER": "offline"})
            results.append((f"{label} · offline", stats_of(docs), defects_of(docs)))
            for kind, tweak in (("fake LLM", None), ("fake LLM, seeded defects", seeded)):
                with FakeAnthropicServer(responder=stage_responder(tweak=tweak)) as server:
                    env = {"MKSAP_PROVIDER": "anthropic", "ANTHROPIC_API_KEY": "fake", "ANTHROPIC_BASE_URL": server.url}
                    docs = build(data, tmp / f"{label}-{kind}", env)
                results.append((f"{label} · {kind}", stats_of(docs), defects_of(docs)))
            if label == "reference":
                before = earlier_tool(data)
                results.append(("reference · earlier tool's output", stats_of(before), defects_of(before)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = report(results)
    print(text)
    if args.write:
        results_md = ROOT / "bench" / "RESULTS.md"
        current = results_md.read_text(encoding="utf-8") if results_md.exists() else ""
        section = re.search(rf"(?ms)^## {SECTION}\n(.*?)(?=^## |\Z)", current)
        kept = ""
        if section and READ_HEADING in section.group(1):
            kept = section.group(1)[section.group(1).index(READ_HEADING) :].rstrip()
        head = f"`.venv/bin/python bench/quality.py --write` on {date.today().isoformat()}."
        write_sections({SECTION: "\n\n".join(p for p in (head, text, kept) if p)})


if __name__ == "__main__":
    main_bench()
