"""A stage that never finishes for one question: a worker thread stuck in a pure-Python loop
(load with MKSAP_PLUGINS=tests.fakes.busy_stage). For BUSY_QID it writes BUSY_FLAG and spins
until the process ends; every other question passes straight through. Interrupts must still
end the run at once."""

from __future__ import annotations

import os
from pathlib import Path

from mksap.contracts.hookspecs import Register
from mksap.contracts.stage import Stage, StageJob


class SpinStage(Stage):
    """Spins forever for one question (tests only)."""

    name = "spin"
    version = "1"
    needs = ("parse",)

    def run(self, job: StageJob) -> dict[str, bool]:
        if job.question.qid == os.environ.get("BUSY_QID"):
            Path(os.environ["BUSY_FLAG"]).write_text("spinning\n", encoding="utf-8")
            while True:  # holds the GIL in slices only, like any pure-Python work
                sum(i * i for i in range(10_000))
        return {"ok": True}


def register_stages(register: Register) -> None:
    register(SpinStage)
