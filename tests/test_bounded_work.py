"""Bounded work in what validation and the nlp stage run: (near) linear in the number of a
question's statements and in the length of one sentence or statement, whatever the input.

Each step that was quadratic and is now linear is held to a small reference implementation of
what it replaced (the straightforward version, written here), on random text and on the
examples' own; the scaling is proven by counting the work (the pairs of statements compared)
or by a time ratio with generous bounds (4x the input in less than 10x the time), on inputs
big enough to show a quadratic step and small enough for CI."""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mksap.contracts.statements import Statement
from mksap_plugins.stages import checks, wording
from mksap_plugins.stages.checks import (
    NEAR_DUPLICATE,
    AliasIndex,
    RestatementIndex,
    SourceUnit,
    check,
    duplicates,
    restates,
)
from mksap_plugins.stages.cloze import finish, ranked_terms, select_candidates
from mksap_plugins.stages.nlp_rules import _LIST as ENUMERATION
from mksap_plugins.stages.nlp_rules import analyse, enumeration
from mksap_plugins.stages.normalise import normalise
from mksap_plugins.stages.parse import ParsedQuestion
from mksap_plugins.stages.quantities import paired_quantities, quantities, quantity_spans
from mksap_plugins.stages.sentences import split_sentences
from mksap_plugins.stages.validate import ValidateStage
from mksap_plugins.stages.wording import FINITE_VERBS, cut_at_new_clause, negated_spans, new_clause_at
from tests.conftest import EXAMPLES

# -- the examples' text, and text built from it ---------------------------------------------


@cache
def example_sentences() -> tuple[str, ...]:
    """Every critique sentence, key point and objective of the bundled examples."""
    found: list[str] = []
    for path in sorted(EXAMPLES.glob("*/*/*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        found += [*split_sentences(doc["critique"]), *doc.get("key_points", []), doc["educational_objective"]]
    return tuple(s for s in found if s.strip())


def long_text(chars: int, punctuation: bool = True, seed: int = 1) -> str:
    """The examples' sentences run together to `chars` characters; without `punctuation`, with
    none of `.,;:` (one sentence with no breaks, as a hostile key point or statement is)."""
    rng, out, n = random.Random(seed), [], 0
    while n < chars:
        s = rng.choice(example_sentences())
        s = s if punctuation else re.sub(r"[.,;:]", "", s)
        out.append(s)
        n += len(s) + 1
    return " ".join(out)[:chars]


def best_time(fn: Callable[[], object], repeat: int = 3) -> float:
    """The least CPU time of `repeat` runs: what the work costs, whatever else the machine runs."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def assert_linear(run: Callable[[int], object], small: int, what: str) -> None:
    """4x the input in less than 10x the time (a quadratic step takes 16x)."""
    run(small)  # warm caches and imports
    t_small, t_big = best_time(lambda: run(small)), best_time(lambda: run(4 * small))
    assert t_big < 10 * t_small + 0.01, f"{what}: {small}: {t_small:.4f}s, {4 * small}: {t_big:.4f}s"


# -- negated spans ---------------------------------------------------------------------------

_REFERENCE_END = re.compile(r"[,;:.()]|\s(?:but|although|though|however|whereas|which|because|while|so)\s", re.I)
_REFERENCE_START = re.compile(r".*(?:[,;:.()]|\s(?:but|although|though|whereas|which|because|while|so)\s)", re.I | re.S)


def reference_negated_spans(text: str) -> list[tuple[str, str]]:
    """NegEx as first written: each cue searches for its clause's end (or start) anew."""
    found = []
    for m in wording._PRE.finditer(text):
        end = _REFERENCE_END.search(text, m.end())
        scope = text[m.end() : end.start() if end else len(text)].strip()
        if scope:
            found.append((m.group(1), scope))
    for m in wording._POST.finditer(text):
        head = text[: m.start()]
        start = _REFERENCE_START.match(head)
        scope = head[start.end() if start else 0 :].strip()
        if scope:
            found.append((m.group(1), scope))
    return found


PIECES = [
    "not", "no", "without", "does not", "is not", "never", "rather than", "is unnecessary", "ruled out",
    "unlikely", "has no role", "is contraindicated", "but", "so", "however", "although", "though", "which",
    "while", "because", "whereas", "and", "or", "include", "is", "are", "lowers", "drug", "K", "stroke", "BUT",
    "So", "NOT", "Is Unnecessary", "ſo", "İs", "x", "2", ",", ";", ":", ".", "(", ")", "-",
]  # fmt: skip
SEPARATORS = ["", " ", " ", " ", "  ", "\n", "\t", "\xa0", ", ", "; "]
texts = st.one_of(
    st.lists(st.tuples(st.sampled_from(PIECES), st.sampled_from(SEPARATORS)), max_size=30).map(
        lambda parts: "".join(p + s for p, s in parts)
    ),
    st.text(max_size=80),
)


@settings(max_examples=400, deadline=None)
@given(texts)
def test_negated_spans_are_what_the_reference_finds(text: str) -> None:
    assert negated_spans(text) == reference_negated_spans(text)


def test_negated_spans_of_the_examples_are_what_the_reference_finds() -> None:
    for s in example_sentences():
        assert negated_spans(s) == reference_negated_spans(s), s
    joined = " ".join(example_sentences())  # one long text, clause breaks and all
    assert negated_spans(joined) == reference_negated_spans(joined)


def test_negated_spans_are_linear_in_a_sentence_without_breaks() -> None:
    # a sentence that never ends, many post-cues: each one used to copy the whole text before it
    assert_linear(lambda words: negated_spans("dialysis, the dose is unnecessary " * (words // 5)), 16_000, "post")
    # clause breaks now and then, pre-cues in between
    assert_linear(lambda chars: negated_spans(long_text(chars)), 40_000, "negated_spans")


def reference_cut(scope: str) -> str:
    for m in wording._AND_OR.finditer(scope):
        following = [w.lower().strip(",;") for w in scope[m.end() :].split()[:6]]
        if any(w in FINITE_VERBS for w in following):
            return scope[: m.start()]
    return scope


@settings(max_examples=400, deadline=None)
@given(texts, st.data())
def test_a_new_clause_is_where_the_reference_cuts(text: str, data: st.DataObject) -> None:
    assert cut_at_new_clause(text) == reference_cut(text)
    pos = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(pos, len(text)))
    assert new_clause_at(text, pos, end) - pos == len(reference_cut(text[pos:end]))


def reference_clauses(text: str) -> list[str]:
    out = []
    for piece in checks._CLAUSE_BREAK.split(text):
        rest = piece.strip()
        while rest:
            head = reference_cut(rest).strip()
            out.append(head or rest)
            rest = re.sub(r"^(?:and|or)\s+", "", rest[len(head) :].strip(), flags=re.I) if head else ""
    return [c for c in out if c]


@settings(max_examples=200, deadline=None)
@given(texts)
def test_clauses_are_what_the_reference_finds(text: str) -> None:
    assert checks._clauses(text) == reference_clauses(text)


def test_clauses_are_linear_in_a_sentence_that_goes_on() -> None:
    assert_linear(lambda words: checks._clauses("the drug lowers risk and is safe " * (words // 7)), 20_000, "clauses")


# -- the list a statement tests --------------------------------------------------------------

LIST = re.compile(r"(?:[^,;:()]+,\s){2,}(?:and|or)\s[^,;:()]+|(?:[^;]+;\s){2,}[^;]+")
list_texts = st.lists(
    st.sampled_from(["a", "b", " ", ",", ", ", ";", "; ", ";\n", "(", ")", ":", "and ", "or ", " and c", "\t", "x y"]),
    max_size=18,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(list_texts)
def test_the_list_found_is_the_one_the_regex_finds(text: str) -> None:
    m = LIST.search(text)
    assert checks._list_items(text) == (max(m.group(0).count(",") + 1, m.group(0).count(";") + 1) if m else None)
    first = ENUMERATION.search(text)
    assert (enumeration(text) or (None,))[0] == (first.start() if first else None)


def test_the_list_check_is_linear() -> None:
    # the regex tried every start, and from each one read to the next semicolon: quadratic
    assert_linear(lambda chars: checks.wording_findings(long_text(chars, punctuation=False)), 10_000, "no breaks")
    assert_linear(lambda n: checks._list_items("item, " * n + "and last"), 10_000, "enumeration")
    assert checks._list_items("a; " * 40_000 + "z") == 40_001


# -- duplicates ------------------------------------------------------------------------------


def reference_duplicates(statements: list[Statement], threshold: float = NEAR_DUPLICATE) -> dict[str, str]:
    """Every statement compared with every earlier one that is no repeat itself."""
    found: dict[str, str] = {}
    for i, s in enumerate(statements):
        for earlier in statements[:i]:
            if earlier.id in found:
                continue
            score = restates(s.statement, earlier.statement, threshold)
            if score is not None:
                found[s.id] = f"{score} {earlier.id}"
                break
    return found


WORDS = "drug lowers risk stroke the of in atrial fibrillation kidney heart failure dose not mg 5 10 aspirin".split()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.lists(st.sampled_from(WORDS), max_size=7), st.integers(0, 5)), max_size=25),
    st.sampled_from([NEAR_DUPLICATE, 0.5, 0.9, 1.0, 0.0, -1.0, 1.5, float("nan")]),
)
def test_duplicates_are_what_comparing_every_pair_finds(rows: list[tuple[list[str], int]], threshold: float) -> None:
    # ids repeat (an id flagged once is never compared again) and texts may have no content word
    statements = [Statement(statement=" ".join(w), id=f"c:{k}", source="critique") for w, k in rows]
    found = duplicates(statements, threshold)
    want = reference_duplicates(statements, threshold)
    assert {k: f.message.rsplit(" ", 1)[-1] for k, f in found.items()} == {k: v.split()[1] for k, v in want.items()}


SYLLABLES = "ka lo mi ren tus val dor pex qui zan bel fo gri hum ix jor ket lun mor nep".split()


def distinct_statements(n: int, seed: int = 1) -> list[str]:
    """`n` statements of a long question: common clinical words and the question's own terms
    (more of them the longer it is), every twentieth a near repeat of an earlier one."""
    rng = random.Random(seed)
    common = "risk treatment dose blood pressure kidney heart failure infection testing mortality".split()
    terms = [f"{a}{b}{c}" for a in SYLLABLES for b in SYLLABLES for c in ("lin", "mab", "osis", "ide")]
    out: list[str] = []
    for k in range(n):
        if k > 20 and k % 20 == 0:
            words = rng.choice(out).split()
            words[rng.randrange(len(words))] = rng.choice(common)
        else:
            vocabulary = terms[: max(50, k // 2)]
            words = [rng.choice(common) if rng.random() < 0.4 else rng.choice(vocabulary) for _ in range(8)]
        out.append(" ".join(words))
    return out


def pairs_compared(texts: list[str]) -> int:
    """How many earlier statements `duplicates` may compare each statement with, in all."""
    index, total = RestatementIndex(texts), 0
    for i, text in enumerate(texts):
        total += len(index.candidates(text))
        index.add(i, text)
    return total


def test_duplicates_compare_a_few_pairs_per_statement() -> None:
    small, big = pairs_compared(distinct_statements(500)), pairs_compared(distinct_statements(2000))
    assert big < 15 * 2000, big  # every pair would be 2000 * 1999 / 2, about 2 million
    assert big < 6 * small, (small, big)
    statements = [
        Statement(statement=t, id=f"c:{k}", source="critique") for k, t in enumerate(distinct_statements(400))
    ]
    assert {k: f.message for k, f in duplicates(statements).items()}.keys() == reference_duplicates(statements).keys()


# -- a question with many statements ---------------------------------------------------------


def many_statements(n: int, seed: int = 1) -> tuple[list[Statement], ParsedQuestion]:
    """A question with `n` critique sentences, each defining an abbreviation of its own and
    yielding one statement (the sentence, or a rewording using the abbreviation)."""
    rng = random.Random(seed)

    def word() -> str:
        return "".join(rng.choice(SYLLABLES) for _ in range(3))

    common = "risk treatment therapy dose blood pressure kidney heart failure reduces increases chronic".split()
    units, statements = [], []
    for k in range(n):
        long = [word() for _ in range(3)]
        short = "".join(w[0] for w in long).upper()
        rest = " ".join(rng.choice(common) if rng.random() < 0.5 else word() for _ in range(rng.randint(5, 12)))
        unit = f"{' '.join(long).capitalize()} ({short}) is {rest} in {rng.randint(2, 90)}% of patients."
        text = f"{short} is {rest} in most patients." if rng.random() < 0.5 else unit
        units.append(unit)
        statements.append(
            Statement(statement=text, cloze_candidates=[short], id=f"c:{k:08x}.1", source="critique", source_index=k)
        )
    parsed = ParsedQuestion(
        qid="cvmcq99001", system="cv", document={}, objective="Know it.", critique=units, key_points=[], tables=[],
        skipped_tables=[],
    )  # fmt: skip
    return statements, parsed


def test_the_validate_stage_is_near_linear_in_the_statements_of_a_question() -> None:
    stage = ValidateStage(None)  # type: ignore[arg-type]  # findings reads no settings
    questions = {n: many_statements(n) for n in (80, 320)}
    assert_linear(lambda n: stage.findings(*questions[n]), 80, "ValidateStage.findings")


# -- the abbreviations a question defines ----------------------------------------------------

ALIAS_WORDS = ["kidney", "disease", "Kidney", "KIDNEY", "failure", "heart", "β-blocker", "fib", "ſ", "K", "k", "s", "2"]
SHORTS = ["CKD", "KD", "HF", "AF", "CKDs", "BB", "X2", "k"]
definitions = st.lists(
    st.tuples(
        st.lists(st.sampled_from(ALIAS_WORDS), min_size=1, max_size=3).map(" ".join),
        st.sampled_from(SHORTS),
        st.sampled_from(["{long} ({short})", "{short} = {long};", "{short} = {long}  ;", "{short} =  ;"]),
    ),
    min_size=1,
    max_size=7,
).map(lambda ds: " ".join(form.format(long=long, short=short) for long, short, form in ds))
alias_texts = st.lists(
    st.sampled_from([*ALIAS_WORDS, *(f"({s})" for s in SHORTS), "(", ")", " ", "  ", "-", "\n", ",", "(AB CD)"]),
    max_size=10,
).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(definitions, alias_texts)
def test_the_alias_index_answers_as_reading_every_abbreviation(all_sources: str, text: str) -> None:
    index, pairs = AliasIndex(all_sources), checks.aliases(all_sources)
    words, norms = set(checks._words(text)), set(checks._norms(text))
    assert index.used(words) == [i for i, (short, _) in enumerate(pairs) if short in words]
    assert index.within(norms) == [i for i, (_, long) in enumerate(pairs) if set(checks._norms(long)) <= norms]
    known, shorts, want_known, want_shorts = set(norms), set(), set(norms), set()
    index.absorb(known, shorts)
    for short, long in pairs:  # in turn: an added short form counts for the ones after it
        if set(checks._norms(long)) <= want_known:
            want_known.add(checks._norm(short))
            want_shorts.add(short)
    assert (known, shorts) == (want_known, want_shorts)
    spelled = [
        (i, m.span(), m.group(1))
        for i, (_, long) in enumerate(pairs)
        for m in re.finditer(rf"(?<![\w-]){re.escape(long)}\s*\(([^()\s,;]{{2,10}})\)", text, re.I)
    ]
    assert [(i, m.span(), m.group(1)) for i, m in index.spelled_out(text)] == spelled


def test_a_statement_reads_only_the_abbreviations_it_uses() -> None:
    # 50 or 800 abbreviations defined: each statement's checks cost about the same
    def question(n: int) -> str:
        return " ".join(u for u in many_statements(n, seed=2)[1].critique)

    statements, parsed = many_statements(100)
    units = [checks.SourceUnit(text=u) for u in parsed.critique]
    small, big = question(50), question(800)
    for everything in (small, big):
        for s, unit in zip(statements, units, strict=True):
            check(s, unit, everything)
    t_small = best_time(lambda: [check(s, u, small) for s, u in zip(statements, units, strict=True)])
    t_big = best_time(lambda: [check(s, u, big) for s, u in zip(statements, units, strict=True)])
    assert t_big < 4 * t_small + 0.01, (t_small, t_big)


def reference_inflected(a: str, b: str) -> bool:
    if min(len(a), len(b)) < 4 or "-" in a + b:
        return False
    return a.startswith(b) or b.startswith(a) or (len(a) >= 7 and a[:7] == b[:7])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text("abcdes-", max_size=9), max_size=8),
    st.text("abcdes-", max_size=9),
)
def test_another_form_of_a_word_is_what_comparing_each_word_finds(words: list[str], word: str) -> None:
    assert checks._Inflections(words).of(word) == any(reference_inflected(word, w) for w in words)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["higher", "lower", "the", "risk", "dose", "is", "more", "less", "of"]), max_size=14))
def test_the_best_placed_direction_word_is_what_scoring_each_finds(words: list[str]) -> None:
    near = checks._Neighbours(words, [checks._stem(w) for w in words])
    for pole in {checks.DIRECTION[w] for w in words if w in checks.DIRECTION} | {("amount", 0)}:
        for before in (None, "risk", "dose", "more"):
            for after in (None, "risk", "dose", "less"):
                scores = [
                    2 * (near.before[j] is not None and near.before[j] == before)
                    + (near.after[j] is not None and near.after[j] == after)
                    for j, w in enumerate(words)
                    if checks.DIRECTION.get(w) == pole
                ]
                assert near.best(pole, before, after) == (max(scores) if scores else None)


# -- one long input --------------------------------------------------------------------------

STATEMENT = Statement(statement="x", cloze_candidates=["x"], id="c:00000000.1", source="critique")
UNIT = SourceUnit(text="Drug K lowers the risk of stroke in atrial fibrillation (AF), not the risk of bleeding.")


def with_text(text: str) -> Statement:
    return STATEMENT.model_copy(update={"statement": text, "cloze_candidates": [text.split()[3]]})


LONG_INPUT: list[tuple[str, Callable[[str], object]]] = [
    ("normalise", normalise),
    ("quantities", lambda t: quantities.__wrapped__(t)),  # not the cache
    ("quantity_spans", quantity_spans),
    ("paired_quantities", paired_quantities),
    ("split_sentences", split_sentences),
    ("analyse", analyse),
    ("ranked_terms", ranked_terms),
    ("finish", lambda t: finish(with_text(t), [])),
    ("select_candidates", lambda t: select_candidates(t, ranked_terms(t)[:40] + t.split()[:200])),
    ("wording_findings", checks.wording_findings),
    ("negation_findings", lambda t: checks.negation_findings(t, t)),
    ("negation_added_findings", lambda t: checks.negation_added_findings(t, t, "", t)),
    ("hedge_findings", lambda t: checks.hedge_findings(t, t)),
    ("faithfulness_findings", lambda t: checks.faithfulness_findings(t, t, SourceUnit(text=t))),
    ("check, long statement", lambda t: check(with_text(t), UNIT, t)),
    ("check, long unit", lambda t: check(with_text(UNIT.text), SourceUnit(text=t), t)),
]


@pytest.mark.parametrize("punctuation", [True, False], ids=["sentences", "no breaks"])
@pytest.mark.parametrize(("name", "work"), LONG_INPUT, ids=[name for name, _ in LONG_INPUT])
def test_one_long_input_is_linear(name: str, work: Callable[[str], object], punctuation: bool) -> None:
    texts = {n: long_text(n, punctuation, seed=n) for n in (6_000, 24_000)}
    assert_linear(lambda n: work(texts[n]), 6_000, name)
