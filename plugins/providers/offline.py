"""The offline provider: rule-based answers from the structured request context.

Needs no key and no network, so the tool does real work on a fresh machine. Its outputs are
marked provider=offline, model rules-3.

- Critique sentences and key points (`offline_sentences`): citations, figure/table pointers,
  "(shown)", option letters and answer framing are dropped; "Option C is incorrect because
  <fact>" gives the fact; a sentence is split into its clauses, each carrying the subject (and
  after a contrast the leading frame) of the first; a generic opening ("The typical lesion",
  "Treatment", "It") gets its subject from the sentences before it or the objective; an
  abbreviation the question defines is spelled out at its first use; a sentence only about the
  case is dropped. Extra is the sentence that named the subject, else the educational objective.
- Tables (`offline_tables`): one natural sentence per meaningful row × column, phrased by what
  the column holds, naming the row's subject, with the caption as Extra; citation, permission,
  legend and yes/no-only cells are skipped.
- Cloze candidates: quantities with their comparators and units first (never a restatement in
  other units apart from its quantity), then named drugs, diseases, organisms, tests and
  abbreviation pairs, then other specific phrases; never a generic word or a fragment.
- Repair: the same rules on the statement, with the source sentence and its neighbours as the
  context a missing subject is taken from.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from mksap.contracts.provider import LLMRequest, LLMResponse, Provider
from mksap.settings import Settings
from mksap_plugins.providers.offline_sentences import abbreviations, statements_from
from mksap_plugins.providers.offline_tables import table_statements
from mksap_plugins.stages.cloze import FUNCTION_WORDS, candidate_range, generic_candidate, select_candidates
from mksap_plugins.stages.nlp_rules import abbreviation_pairs, phrases
from mksap_plugins.stages.quantities import paired_quantities, quantity_spans
from mksap_plugins.stages.wording import term_category

__all__ = ["OfflineProvider", "generalise", "source_statements", "table_statements", "cloze_candidates", "repair"]

MODEL = "rules-3"
_CATEGORY_RANK = {"drug": 0, "disease": 1, "organism": 2, "test": 3, "acronym": 4}
_LEADING_WEAK = re.compile(
    r"^(?:[A-Za-z]+ing|frequent|persistent|recent|prior|current|such|other|all|any|avoid|add|use|start|stop|give"
    r"|consider|check)\s+",
    re.I,
)


def generalise(sentence: str) -> list[str]:
    """General statements from one source sentence read alone ([] when it is only about the case)."""
    return [d.text for d in statements_from(sentence, [], "", abbreviations([sentence]))]


def source_statements(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    """Statements from a critique or key-point request: each sentence read with the ones before
    it (where an omitted subject is named) and the educational objective."""
    sentences = [str(s.get("text", "")) for s in ctx.get("sentences", [])]
    objective = str(ctx.get("educational_objective") or "").strip()
    earlier = [str(s) for s in ctx.get("critique_statements", [])]
    defined = abbreviations([objective, *earlier, *sentences])
    out: list[dict[str, Any]] = []
    for i, sent in enumerate(ctx.get("sentences", [])):
        before = [*reversed(sentences[:i]), *reversed(earlier[-3:])]
        for draft in statements_from(sentences[i], before, objective, defined):
            extra = draft.named_by or objective or None
            out.append({"statement": draft.text, "extra_field": extra, "source_index": sent["index"]})
    return out


def _clinical_rank(phrase: str) -> int | None:
    ranks = [_CATEGORY_RANK[c] for w in re.findall(r"[\w'-]+", phrase) if (c := term_category(w)) in _CATEGORY_RANK]
    return min(ranks) if ranks else None


def _split_at_function_words(phrase: str) -> list[str]:
    runs: list[list[str]] = [[]]
    for w in phrase.split():
        if w.lower() in FUNCTION_WORDS:
            runs.append([])
        else:
            runs[-1].append(w)
    return [" ".join(r) for r in runs if r]


_CODE = re.compile(
    r"\b(?:category|class|stage|grade|type|group|phase|zone|level) (?P<code>[A-Z]?\d{1,2}[a-z]?|[IV]{1,4})\b", re.I
)
_CLASS_WORD = re.compile(r"^ (?:inhibitors?|blockers?|antagonists?|agonists?|analogues?|antibod(?:y|ies))\b")


def _pairs(statement: str) -> list[str]:
    """Abbreviation pairs, with the drug-class word that follows them ("sodium-glucose
    cotransporter 2 (SGLT2) inhibitors"): the pair alone would hide half a term."""
    out = []
    for long, short in abbreviation_pairs(statement):
        pair = f"{long} ({short})"
        end = statement.find(pair) + len(pair)
        m = _CLASS_WORD.match(statement[end:])
        out.append(pair + m.group(0) if m else pair)
    return out


def cloze_candidates(statement: str, terms: list[str]) -> list[str]:
    """Two candidates (three in a statement of 20 words or more), best first: quantities
    (thresholds first), category codes, named drugs, diseases, organisms and tests, abbreviation
    pairs; other specific phrases and the nlp terms only when those are too few."""
    low, high = candidate_range(statement)
    want = min(high, 3 if len(statement.split()) >= 20 else 2)
    restated = {statement[s:e] for _, (s, e) in paired_quantities(statement)}
    numbers = [q for q in quantity_spans(statement) if q not in restated]
    numbers.sort(key=lambda q: 0 if q[:1] in "≥≤<>" or q[:1].isalpha() else 1)
    codes = [m.group("code") for m in _CODE.finditer(statement) if not quantity_spans(m.group("code"))]
    named: list[tuple[int, int, str]] = []
    other: list[str] = []
    runs = [run for p in phrases(statement) for run in _split_at_function_words(p)]
    for i, p in enumerate(runs):
        bare = _LEADING_WEAK.sub("", p)
        p = bare if _clinical_rank(bare) is not None or len(bare.split()) >= 2 else p
        rank = _clinical_rank(p)
        if rank is not None:
            named.append((rank, i, p))
        elif (len(p.split()) >= 2 or not p.endswith(("ed", "ing"))) and not generic_candidate(p):
            other.append(p)
    ranked = [*_pairs(statement), *(p for _, _, p in sorted(named))]
    naming_code = [t for t in ranked if any(re.search(rf"{re.escape(t)}\s+\w+\s+{c}\b", statement) for c in codes)]
    ranked = [t for t in ranked if t not in naming_code] + naming_code  # "GFR category G5": G5 is the answer
    strong = select_candidates(statement, [*numbers, *codes, *ranked], want)
    if len(strong) >= max(low, min(want, 2)):
        return strong
    words = [t for t in terms if len(t.split()) > 1 or not t.endswith(("ed", "ing"))]  # "excreted" is no answer
    return select_candidates(statement, [*strong, *other, *words], max(want, low))


def repair(item: dict[str, Any]) -> dict[str, Any]:
    """What rules can fix: option/table references, case clauses, a missing subject (from the
    source sentence and its neighbours); otherwise unchanged."""
    context = [str(item.get(k) or "") for k in ("source_text", "sentence_before", "sentence_after")]
    defined = abbreviations([item["statement"], *context])
    drafts = statements_from(item["statement"], [c for c in context if c], "", defined)
    text = drafts[0].text if drafts else item["statement"]
    kept = [c for c in item.get("cloze_candidates", []) if c in text]
    return {"statement_id": item["statement_id"], "statement": text, "cloze_candidates": kept}


class OfflineProvider(Provider):
    """Rule-based extraction on the nlp stage's output; no key, no network."""

    name = "offline"
    local: ClassVar[bool] = True

    @property
    def model(self) -> str:
        return MODEL

    @classmethod
    def health(cls, settings: Settings) -> list[str]:
        return ["ok: usable (no key, no network)"]

    async def complete(self, request: LLMRequest) -> LLMResponse:
        ctx = request.context
        if request.task == "statements":
            statements = table_statements(ctx) if ctx.get("source") == "table" else source_statements(ctx)
            data: dict[str, Any] = {"statements": statements}
        elif request.task == "cloze":
            data = {
                "items": [
                    {"statement_id": s["id"], "cloze_candidates": cloze_candidates(s["text"], s.get("terms", []))}
                    for s in ctx.get("statements", [])
                ]
            }
        else:
            data = {"items": [repair(item) for item in ctx.get("items", [])]}
        return LLMResponse(
            data=data, raw_text=json.dumps(data, ensure_ascii=False), provider=self.name, model=self.model
        )
