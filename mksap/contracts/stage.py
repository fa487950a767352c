"""The stage interface. Each (question, stage) becomes one doit task.

A stage reads the artifacts of the stages it `needs` (or, for the first stage, the question's
source files) and returns its own artifact. The engine handles files, fingerprints, atomic
writes and failure records; a stage only computes.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel

from mksap.bank import Question
from mksap.contracts.errors import AnswerError, StageError
from mksap.contracts.provider import LLMRequest, LLMResponse, Message
from mksap.settings import Configured, Settings

A = TypeVar("A", bound=BaseModel)


@dataclass
class StageJob:
    """What one task run of a stage gets."""

    question: Question
    settings: Settings
    artifacts: dict[str, Path]
    #: `llm(request, accept, answers=None)`: the provider runtime's `complete` for this stage
    llm: Callable[..., LLMResponse]
    provenance: dict[str, Any]

    def ask(self, request: LLMRequest, answer: type[A]) -> tuple[A, LLMResponse]:
        """Send `request`; an answer that is not valid for `answer` gets one repair round
        (the error sent back), then the task fails with a one-line reason.

        A repaired answer is cached under `request`'s own key as well (`answers=request`), so a
        rerun of `request` is answered from the cache, with the same answer, and pays nothing."""
        try:
            response = self.llm(request, answer.model_validate)
        except AnswerError as first:
            repair = request.model_copy(
                update={
                    "messages": [
                        *request.messages,
                        Message(role="assistant", content=first.raw_text or "(no answer)"),
                        Message(
                            role="user",
                            content=f"That answer was unusable: {first}. Answer again with JSON only, "
                            "valid for the schema, and shorter if it was cut off.",
                        ),
                    ]
                }
            )
            try:
                response = self.llm(repair, answer.model_validate, answers=request)
            except AnswerError as second:
                raise StageError(f"{request.task}: unusable answer after one repair round: {second}") from None
        return answer.model_validate(response.data), response

    def read(self, stage: type[Stage], model: type[A]) -> A:
        """The artifact an upstream stage wrote for this question."""
        return model.model_validate_json(self.artifacts[stage.name].read_bytes())


class Stage(Configured, ABC):
    """Base class of stage plugins.

    Class attributes:
      name      unique stage name; also the doit task basename (`<name>:<qid>`)
      version   bump when the stage's logic changes: every question reruns this stage
      needs     names of stages whose artifacts this one reads (defines the task graph)
      reads_source  True for the stage that reads the question JSON and tables
      uses_llm  True if the stage calls the provider (provider and model join its fingerprint)
      final     True for the stage that writes the output question file
      options_model  the pydantic model of its own options (`[plugins.<name>]` in config)
    """

    name: ClassVar[str]
    version: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ()
    reads_source: ClassVar[bool] = False
    uses_llm: ClassVar[bool] = False
    final: ClassVar[bool] = False

    def config(self) -> dict[str, Any]:
        """Everything besides input files that changes this stage's result (prompt text,
        options). Changing any value reruns this stage for every question."""
        return {}

    def notices(self) -> list[str]:
        """One-time messages for the start of a run (e.g. that a fallback is in use)."""
        return []

    def health(self) -> list[str]:
        """Lines for `mksap doctor`, each starting 'ok: ', 'warn: ' or 'error: ': what this
        stage depends on and whether it is usable."""
        return []

    def fingerprint(self, provider: str, model: str) -> str:
        payload: dict[str, Any] = {"stage": self.name, "version": self.version, "config": self.config()}
        if self.uses_llm:
            payload.update(provider=provider, model=model)
        text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    @abstractmethod
    def run(self, job: StageJob) -> BaseModel | dict[str, Any]:
        """Compute this stage's artifact for `job.question`.

        Raise `InputError` for unusable input and `StageError` for unusable model answers:
        the question fails with that one-line reason and every other question goes on.
        """


def describe(stage: type[Stage]) -> str:
    """The first line of a stage's docstring (shown by `doit list`), else its name."""
    doc = (stage.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else stage.name
