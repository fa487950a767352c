"""Cost benchmark: what a question costs under the real API's prompt-caching rules, how close
`mksap run --estimate` comes to the bill, that a rerun never pays twice, and `--max-cost`.

    python bench/cost.py [N_QUESTIONS] [--write]     (default 200; ~1 min on 2 cores)

Every LLM call goes to the fake Messages API server (tests/fakes/anthropic_server.py) through
the real anthropic provider and SDK. The fake enforces the minimum cacheable prefix of each model
like the API (claude-sonnet-4-6: 2,048 tokens): a marked prefix below it is neither written nor
read. Its answers are those of tests/fakes/stage_answers.py (a sensible model's, from the offline
rules). Sections:

1. calibration: per task, output tokens billed per message token (the constants of
   mksap/llm/tokens.py come from here);
2. estimate vs bill: `--estimate` (in-process, counting the fake's requests: none may arrive),
   then the cold build it estimated;
3. cost per question: plain, with prompt caching and with caching + batches, as billed under the
   real minimums, and the share of prompt tokens read from the prompt cache; then a projection
   (computed, not measured) for shared instructions lengthened to 2,100 tokens;
4. never pay twice: a cold build where 5% of first answers are malformed (repaired), then
   `--force`: calls made (goal 0) and whether the statements are the same;
5. spending cap: a cold build with `--max-cost` at 40% of the measured bill and 16 calls in
   flight: exit code, spend against the cap, then a run without the cap: requests sent twice.

Prints a markdown section; `--write` also puts it into bench/RESULTS.md as section 6 (replacing
an earlier one: `bench/suite.py` rewrites that file without it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import Workdir

from tests.fakes.anthropic_server import FakeAnthropicServer, Reply
from tests.fakes.stage_answers import answer_for

MODEL = "claude-sonnet-4-6"
BANK = 2198
LATENCY = 0.05  # enough for 16 calls to overlap; the bill does not depend on it
MALFORMED_EVERY = 20  # 5% of first answers
DEFECT_EVERY = 10  # 10% of critique answers get a statement about "this patient" (validate repairs it)
LENGTHENED_PREFIX = 2100
RESULTS = Path(__file__).parent / "RESULTS.md"
TITLE = "## 6. Cost under the real API's rules"


def task_of(body: dict[str, Any]) -> str:
    payload = json.loads(body["messages"][0]["content"])
    if "items" in payload:
        return "repair"
    return "cloze" if "statements" in payload and "sentences" not in payload else "statements"


def first_turn_digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(body["messages"][0]["content"].encode()).hexdigest()


class Recorder:
    """A responder that answers like stage_answers (optionally with malformed first answers and
    seeded defects) and records per call: task, message tokens (as mksap counts them), output
    tokens billed."""

    def __init__(self) -> None:
        self.malformed = False
        self.calls: list[tuple[str, int, int]] = []
        self.bodies: list[str] = []

    def __call__(self, body: dict[str, Any]) -> Reply:
        messages = body["messages"]
        self.bodies.append(json.dumps([body.get("system"), messages], sort_keys=True))
        digest = int(first_turn_digest(body), 16)
        if self.malformed and len(messages) == 1 and digest % MALFORMED_EVERY == 0:
            reply = Reply.text('Sure! Here are the statements: {"statements": [')
            out = reply.content_text
        else:
            payload = json.loads(messages[0]["content"])
            answer = answer_for(payload)
            if self.malformed and payload.get("source") == "critique" and digest % DEFECT_EVERY == 1:
                first = answer["statements"][0]["statement"] if answer["statements"] else "Aspirin helps."
                case = {"statement": f"In this patient, {first[0].lower()}{first[1:]}", "extra_field": None}
                answer["statements"].append({**case, "source_index": 0})
            reply = Reply.json_object(answer)
            out = json.dumps(answer)
        message_tokens = sum(len(m["content"]) // 4 for m in messages)
        self.calls.append((task_of(body), message_tokens, max(1, len(out) // 4)))
        return reply


def llm_env(server: FakeAnthropicServer, **extra: str) -> dict[str, str]:
    return {
        "MKSAP_PROVIDER": "anthropic",
        "MKSAP_MODEL": MODEL,
        "ANTHROPIC_API_KEY": "sk-ant-bench-not-a-real-key",
        "ANTHROPIC_BASE_URL": server.url,
        "MKSAP_MAX_CONCURRENCY": "16",
        "MKSAP_JOBS": "24",
        "MKSAP_RPM": "0",
        "MKSAP_TPM": "0",
        **extra,
    }


def ledger(work: Workdir) -> dict[str, Any]:
    path = work.path / "cache" / "build" / "usage.json"
    return json.loads(path.read_text())[f"anthropic/{MODEL}"] if path.exists() else {}


def estimate_in_process(work: Workdir, env: dict[str, str]) -> Any:
    """`mksap run --estimate` through the same core call the command makes."""
    from mksap.build.session import RunRequest, build_targets
    from mksap.contracts.registry import Registry
    from mksap.settings import load_settings

    full = work.env(**env)
    settings = load_settings(env=full, cwd=work.path).settings
    outcome = build_targets(
        settings, RunRequest(targets=[], estimate=True), registry=Registry.load(full), notice=lambda m: None
    )
    return outcome.estimate


def statements(work: Workdir) -> dict[str, Any]:
    """Every output's statements (no timestamps), to compare two builds."""
    out = {}
    for path in sorted((work.path / "out").glob("*/*/*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        out[path.stem] = [doc.get("true_statements"), doc.get("table_statements"), doc.get("rejected_statements")]
    return out


def prices() -> tuple[float, float, float, float]:
    from mksap_plugins.providers.anthropic_prices import PRICES

    return PRICES[MODEL]


def projection(recorder: Recorder, calls: int, n: int, plain: float) -> list[str]:
    """Computed, not measured: the same calls with every prompt lengthened to LENGTHENED_PREFIX."""
    p_in, p_out, _, _ = prices()
    messages = sum(c[1] for c in recorder.calls)
    outputs = sum(c[2] for c in recorder.calls)
    prompts = 5  # critique, keypoints, tables, cloze, repair: one prompt-cache entry each
    lp = LENGTHENED_PREFIX
    proj_plain = ((calls * lp + messages) * p_in + outputs * p_out) / 1e6
    proj_cached = (
        messages * p_in + prompts * lp * p_in * 1.25 + (calls - prompts) * lp * p_in * 0.1 + outputs * p_out
    ) / 1e6
    return [
        f"| projected, instructions at {lp} tokens: plain | {proj_plain / n:.5f} | {proj_plain / n * BANK:.2f} "
        "| 100% |",
        f"| projected, instructions at {lp} tokens: caching | {proj_cached / n:.5f} | "
        f"{proj_cached / n * BANK:.2f} | {proj_cached / proj_plain:.0%} |",
        f"| projected, instructions at {lp} tokens: caching + batches | {proj_cached / 2 / n:.5f} | "
        f"{proj_cached / 2 / n * BANK:.2f} | {proj_cached / 2 / proj_plain:.0%} |",
        "",
        "The projection is computed, not measured: the same calls with every prompt lengthened to "
        f"{lp} tokens, {prompts} cache writes (1.25x) and every other prefix read (0.1x).",
    ]


def calibration(calls: list[tuple[str, int, int]]) -> list[str]:
    rows = [
        "| task | calls | message tokens | output tokens | output per message token | in use |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    from mksap.llm.tokens import OUTPUT_PER_MESSAGE_TOKEN

    for task in ("statements", "cloze", "repair"):
        mine = [c for c in calls if c[0] == task]
        if not mine:
            continue
        m, o = sum(c[1] for c in mine), sum(c[2] for c in mine)
        rows.append(f"| {task} | {len(mine)} | {m} | {o} | {o / m:.3f} | {OUTPUT_PER_MESSAGE_TOKEN.get(task, '-')} |")
    return rows


def stale_note() -> str:
    """A warning when section 3 of RESULTS.md claims a prompt-caching saving that was measured
    when the fake cached any marked prefix (the real API never does)."""
    found = re.search(r"^\| prompt caching \| [\d.]+ \| [\d.]+ \| (\d+)% \|", RESULTS.read_text(), re.MULTILINE)
    if found is None or found.group(1) == "100":
        return ""
    return (
        f" Section 3 above says prompt caching costs {found.group(1)}% of plain: it was measured when the fake "
        "cached any marked prefix, which the real API never does (rerun `bench/suite.py`); the rows here are "
        "measured under the real rules."
    )


def write_section(text: str) -> None:
    """Put `text` into RESULTS.md as its section 6, replacing the one there."""
    lines = RESULTS.read_text(encoding="utf-8").splitlines()
    if TITLE in lines:
        start = lines.index(TITLE)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines[start:end] = text.splitlines() + ([""] if end < len(lines) else [])
    else:
        lines += ["", *text.splitlines()]
    RESULTS.write_text("\n".join(lines).rstrip("\n") + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions", type=int, nargs="?", default=200)
    parser.add_argument("--write", action="store_true", help="put the section into bench/RESULTS.md")
    args = parser.parse_args()
    n = args.questions
    started = time.perf_counter()
    recorder = Recorder()
    p_in, p_out, _, _ = prices()
    out: list[str] = []
    with FakeAnthropicServer(responder=recorder, latency=LATENCY) as server:
        env = llm_env(server)
        work = Workdir("cost", {})
        work.make_bank(n)
        work.reset_state()

        # 2. the estimate, then the build it estimates
        before = len(server.requests)
        t0 = time.perf_counter()
        est = estimate_in_process(work, env)
        est_wall = time.perf_counter() - t0
        est_requests = len(server.requests) - before
        assert est_requests == 0, f"--estimate sent {est_requests} request(s)"
        assert not (work.path / "cache").exists() and not (work.path / "out").exists(), "--estimate wrote build state"
        recorder.calls.clear()
        build = work.run(**env)
        calls = len(server.requests) - before
        bill = ledger(work)
        total = est.total()
        est_plain, est_cached = est.dollars("plain"), est.dollars("caching")
        billed_prompt = bill["input_tokens"] + bill["cache_creation_input_tokens"] + bill["cache_read_input_tokens"]
        billed_plain = (billed_prompt * p_in + bill["output_tokens"] * p_out) / 1e6
        clean_calls = list(recorder.calls)
        out += [
            "### The estimate against the bill",
            "",
            f"`mksap run --estimate` on the cold bank of {n}: {est_wall:.1f} s, **{est_requests} requests** "
            f"reached the server; then the cold build ({build.wall:.1f} s):",
            "",
            "| | requests | input tokens | output tokens | $ plain | $ with prompt caching |",
            "|---|---:|---:|---:|---:|---:|",
            f"| estimate | {total.requests} | {total.input_tokens} | {total.output_tokens} | {est_plain:.4f} | "
            f"{est_cached:.4f} |",
            f"| bill (usage ledger) | {calls} | {billed_prompt} | {bill['output_tokens']} | {billed_plain:.4f} | "
            f"{bill['cost_usd']:.4f} |",
            f"| estimate / bill | {total.requests / calls:.2f} | {total.input_tokens / billed_prompt:.2f} | "
            f"{total.output_tokens / bill['output_tokens']:.2f} | {est_plain / billed_plain:.2f} | "
            f"**{est_cached / bill['cost_usd']:.2f}** |",
            "",
            "(bill plain: the billed tokens at the input price, as if nothing were cached)",
            "",
        ]

        # 3. cost per question under the real minimums
        read, write = bill["cache_read_input_tokens"], bill["cache_creation_input_tokens"]
        plain = (billed_prompt * p_in + bill["output_tokens"] * p_out) / 1e6
        cached = bill["cost_usd"]
        model = est.models[0]
        sizes = f"{model.prefix_min}-{model.prefix_max} tokens at 4 characters a token"
        if read or write:
            why = f"the shared instructions are {sizes}, the model's minimum {model.min_cacheable}"
        else:
            why = (
                f"the shared instructions are {sizes}, below the model's minimum of {model.min_cacheable}, so "
                "mksap marks nothing and the API would cache nothing"
            )
        out += [
            f"### Cost per question ({MODEL}, list prices; bank of {n})",
            "",
            f"Measured: {billed_prompt / n:.0f} prompt tokens a question, **{read / max(billed_prompt, 1):.1%} "
            f"read from the prompt cache** ({write} written): {why}.",
            "",
            "| mode | $ per question | $ for 2,198 | vs plain |",
            "|---|---:|---:|---:|",
            f"| plain | {plain / n:.5f} | {plain / n * BANK:.2f} | 100% |",
            f"| prompt caching (as billed) | {cached / n:.5f} | {cached / n * BANK:.2f} | "
            f"{cached / plain:.0%} |",
            f"| prompt caching + batches | {cached / 2 / n:.5f} | {cached / 2 / n * BANK:.2f} | "
            f"{cached / 2 / plain:.0%} |",
        ]
        if not (read or write):
            out += projection(recorder, calls, n, plain)
        if model.marked_uncounted:
            out += [
                "",
                f"Caveat: {model.marked_uncounted} of the estimate's {model.requests} requests carry instructions "
                f"within 10% of the minimum ({model.min_cacheable}) by a 4-characters-a-token count, which cannot "
                "tell whether the API's own tokenizer reaches it. The fake counts the same way and cached them; the "
                "estimate counts no saving for them: its prompt caching comes to "
                f"{est_cached / est_plain:.0%} of plain, against {cached / plain:.0%} billed by the fake. "
                "The real figure lies between the two until those prompts are clearly longer than the minimum.",
            ]
        out.append("")

        # 4. malformed first answers, then --force
        work.reset_state()
        recorder.malformed = True
        recorder.calls.clear()
        mark = len(server.requests)
        work.run(**env)
        cold_calls = len(server.requests) - mark
        repaired = sum(1 for c in server.requests[mark:] if len(c["body"].get("messages", [])) == 3)
        validate_repairs = [c for c in recorder.calls if c[0] == "repair"]
        first = statements(work)
        mark = len(server.requests)
        work.run("--force", **env)
        forced = len(server.requests) - mark
        same = statements(work) == first
        recorder.malformed = False
        out += [
            "### Never pay twice",
            "",
            f"Cold build with {100 // MALFORMED_EVERY}% of first answers malformed and a statement about "
            f'"this patient" seeded into {100 // DEFECT_EVERY}% of critique answers: {cold_calls} calls '
            f"({repaired} repair rounds of malformed answers, {len(validate_repairs)} repairs by validate). "
            f"Then `mksap run --force`: **{forced} calls** (goal 0); statements "
            f"{'identical' if same else 'DIFFERENT'}.",
            "",
            "### Calibration (output tokens per message token, by task)",
            "",
            "Statements and cloze from the clean cold build, repair from validate's repairs above:",
            "",
            *calibration([c for c in clean_calls if c[0] != "repair"] + validate_repairs),
            "",
        ]

        # 5. spending cap with 16 in flight
        work.reset_state()
        cap = round(bill["cost_usd"] * 0.4, 4)
        mark = len(server.requests)
        server.max_in_flight = 0
        capped = work.run("--max-cost", str(cap), check=False, **env)
        capped_calls = len(server.requests) - mark
        spent = ledger(work).get("cost_usd", 0.0)
        peak = server.max_in_flight
        line = next((x for x in capped.stderr.splitlines() if x.startswith("stopped at the cost cap")), "(none)")
        sent_capped = set(recorder.bodies[-capped_calls:]) if capped_calls else set()
        mark = len(server.requests)
        work.run(**env)
        rest = len(server.requests) - mark
        again = sum(1 for b in recorder.bodies[-rest:] if b in sent_capped) if rest else 0
        out += [
            "### Spending cap",
            "",
            f"Cold build with `--max-cost {cap}` (40% of the bill above), 16 calls in flight (peak at the server: "
            f"{peak}): exit code **{capped.code}**, {capped_calls} calls, **spent ${spent:.4f} = "
            f"{spent / cap:.2f}x the cap**. Its last line: `{line}`",
            "",
            f"Then `mksap run` without a cap: {rest} calls, **{again} of them sent before**; "
            f"{capped_calls} + {rest} = {capped_calls + rest} calls against {calls} for a build in one go.",
            "",
        ]
    header = [
        TITLE,
        "",
        f"`python bench/cost.py {n}` on {datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, Python "
        f"{platform.python_version()}; took {time.perf_counter() - started:.0f} s. The fake Messages API applies "
        "the minimum cacheable prefix of each model, as the real API does." + stale_note(),
        "",
    ]
    text = "\n".join(header + out)
    (Path(__file__).parent / "work" / "cost-section.md").write_text(text + "\n", encoding="utf-8")
    if args.write:
        write_section(text)
    print(text)


if __name__ == "__main__":
    main()
