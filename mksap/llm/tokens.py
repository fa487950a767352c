"""Token counts known before a request is sent: what it will read (about four characters a
token, as the rate limiter has always paced it) and what it is expected to write.

No tokenizer is loaded and no endpoint is called: the same count serves the rate limiter, the
cost cap's reservations and `mksap run --estimate`, which must send nothing.
"""

from __future__ import annotations

from mksap.contracts.provider import LLMRequest

CHARS_PER_TOKEN = 4

#: Expected output tokens per token of the request's messages, by task, and a floor.
#:
#: How they were calibrated: `python bench/cost.py 200` (its section "calibration") makes a cold
#: build of a generated bank of 200 questions against the fake Messages API answering like a
#: sensible model (`tests/fakes/stage_answers.py`: the offline rules behind real HTTP and the real
#: SDK), with seeded defects so validate repairs some statements, and sums per task the output
#: tokens the fake billed and the message tokens of the requests (the system prompt is left out:
#: it is the same for every request of a task, does not make the answer longer, and grew tenfold
#: with the prompts' worked examples). Measured on 2026-12-01 with the v3 answers of stage_answers (extra
#: fields filled in, a model's usual cloze slips): statements 0.521 (391 calls), cloze 0.477
#: (200), repair 0.285-0.386 (9 a run); before the v3 answers they were 0.341, 0.332 and 0.386.
#: Rounded up. A real model's answers have the same shape (the answer schemas fix it) but not the
#: same length: the estimate aims within 2x of the bill, not closer.
OUTPUT_PER_MESSAGE_TOKEN: dict[str, float] = {"statements": 0.53, "cloze": 0.49, "repair": 0.40}
DEFAULT_OUTPUT_RATIO = 0.5
MIN_OUTPUT_TOKENS = 16

#: A call's reservation under `max_cost` assumes this many times the expected output, so that a
#: long answer in flight cannot take the run past the cap (settled with the real usage after).
RESERVE_OUTPUT_FACTOR = 2.0


def text_tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN


def prefix_tokens(request: LLMRequest) -> int:
    """Tokens of the shared instructions (the system prompt): the part prompt caching can reuse."""
    return text_tokens(request.system)


def message_tokens(request: LLMRequest) -> int:
    return sum(text_tokens(m.content) for m in request.messages)


def prompt_tokens(request: LLMRequest) -> int:
    """Input tokens of `request` (system prompt and messages), at least 1."""
    return prefix_tokens(request) + message_tokens(request) + 1


def expected_output_tokens(request: LLMRequest) -> int:
    """What the answer to `request` is expected to cost in output tokens (see the calibration
    above), never more than its `max_tokens`."""
    ratio = OUTPUT_PER_MESSAGE_TOKEN.get(request.task, DEFAULT_OUTPUT_RATIO)
    return min(request.max_tokens, max(MIN_OUTPUT_TOKENS, round(ratio * message_tokens(request))))


def reserved_output_tokens(request: LLMRequest) -> int:
    """The output a cost reservation assumes: a margin over the expectation, within `max_tokens`."""
    return min(request.max_tokens, round(expected_output_tokens(request) * RESERVE_OUTPUT_FACTOR))
