"""`mksap run --batch`: the build's LLM requests as Message Batches (half price), in rounds.

Later stages need earlier answers, so a batched build runs in rounds. Each round runs the normal
build (same doit graph, same engine) with the provider runtime in collect mode (`Collector`): a
request that misses the LLM cache takes the answer fetched from an earlier batch if there is one
(the stage validates it, then it is cached, exactly like a fresh answer); otherwise it is
recorded and its task fails with "waiting for batch". Everything whose answers are known
completes. The recorded requests are then submitted as batches (split to the API's limits),
polled until they end, and their results stored; the next round goes on from there. The run
ends with the first round that records nothing: by then every answer is in the LLM cache, so a
plain `mksap run` afterwards makes no call.

Batch ids and results persist under `<cache_dir>/batches/` (`mksap.batch.state`) the moment
they exist, and a create is recorded as pending before it is sent, so a run that is
interrupted or killed at any point, or started again the next day, polls the batches it already
paid for instead of submitting them again (`mksap.batch.pending` finds a batch whose create
answer was lost).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mksap.bank import Question
from mksap.batch.api import (
    MAX_BATCH_BYTES,
    MAX_BATCH_REQUESTS,
    BatchAPI,
    BatchInfo,
    BatchPendingError,
    SupportsBatches,
)
from mksap.batch.pending import look_up
from mksap.batch.state import KEY, BatchRecord, BatchState, BatchStore, PendingCreate
from mksap.batch.watch import BatchWatcher
from mksap.build.progress import choose_progress
from mksap.build.runner import RunReport, interrupts_as_keyboard
from mksap.build.runner import run as run_build
from mksap.build.tasks import Build
from mksap.contracts.errors import (
    AnswerError,
    ConfigError,
    ExitCode,
    MksapError,
    ProviderError,
    Terminated,
    exit_code_for,
)
from mksap.contracts.provider import LLMRequest, LLMResponse, Provider

FAILURE_POLICIES = ("fallback", "report")
WAITING = "waiting for batch: its request goes into the next Message Batch; run `mksap run --batch` to continue"


@dataclass(frozen=True)
class BatchOptions:
    """How a batched run behaves. `failures`: what errored or expired batch requests do:
    `fallback` sends them as direct calls in the next round, `report` fails their questions."""

    failures: str = "fallback"
    poll_interval: float = 30.0
    max_rounds: int = 8
    max_requests: int = MAX_BATCH_REQUESTS
    max_bytes: int = MAX_BATCH_BYTES - 1_000_000  # room for the envelope of the create call
    status_every: float = 60.0  # repeat an unchanged batch's status line this often

    def __post_init__(self) -> None:
        if self.failures not in FAILURE_POLICIES:
            raise ConfigError(f"--batch-failures must be one of {', '.join(FAILURE_POLICIES)}, not '{self.failures}'")


class Collector:
    """The runtime's miss handler during a batched run (called from worker threads)."""

    def __init__(self, store: BatchStore, state: BatchState, provider: str, policy: str) -> None:
        self.store, self.state, self.provider, self.policy = store, state, provider, policy
        self._pending: dict[str, LLMRequest] = {}
        self.served: set[str] = set()  # keys answered from the store or by their failure note
        self._lock = threading.Lock()

    def resolve(self, provider: Provider, request: LLMRequest, key: str) -> LLMResponse | None:
        if provider.name != self.provider:
            return None
        stored = self.store.get(key)
        if stored is not None:
            with self._lock:
                self.served.add(key)
            if stored.response is not None:
                return stored.response
            raise AnswerError(stored.error or "unusable batch answer", stored.raw_text)
        failure = self.state.failures.get(key)
        if failure is not None:
            with self._lock:
                self.served.add(key)
            if self.policy == "fallback":
                return None  # a direct call, at the normal price
            raise ProviderError(
                f"batch request {failure.outcome} ({failure.reason}) in {failure.batch_id}; run "
                "`mksap run --batch` again to resubmit it, or drop `--batch-failures report` to call it directly"
            )
        with self._lock:
            self._pending[key] = request
        raise BatchPendingError(WAITING)

    def take(self) -> dict[str, LLMRequest]:
        """The requests recorded since the last call."""
        with self._lock:
            pending, self._pending = self._pending, {}
        return pending


def batch_api_of(build: Build) -> BatchAPI:
    """The batch API of the run's provider, or a `ConfigError` saying why there is none."""
    runtime = build.runtime
    if runtime.cache is None:
        raise ConfigError("--batch puts the answers in the LLM cache: drop --no-cache")
    if runtime.cache.refresh:
        raise ConfigError("--batch cannot --refresh; run `mksap cache clear` first for a full regeneration")
    provider = runtime.providers()[0]
    if not isinstance(provider, SupportsBatches):
        able = [n for n in build.registry.names("provider") if issubclass(build.registry.provider(n), SupportsBatches)]
        raise ConfigError(
            f"--batch needs a provider with a batch API ({', '.join(able) or 'none installed'}); "
            f"this run uses '{provider.name}': pass --provider {able[0] if able else 'NAME'}"
        )
    reason = type(provider).unready(build.settings)
    if reason is not None:
        raise ConfigError(f"--batch: provider '{provider.name}' is not ready: {reason}")
    return provider.batch_api()


def split(items: list[dict[str, Any]], max_requests: int, max_bytes: int) -> list[list[dict[str, Any]]]:
    """Consecutive chunks within `max_requests` items and about `max_bytes` of JSON each."""
    chunks: list[list[dict[str, Any]]] = []
    size = 0
    for item in items:
        item_size = len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode()) + 1
        if not chunks or len(chunks[-1]) >= max_requests or (chunks[-1] and size + item_size > max_bytes):
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += item_size
    return chunks


def merge_reports(total: RunReport, report: RunReport) -> None:
    """Fold one round's report into the run's: a task keeps its last real outcome."""
    for name, outcome in report.tasks.items():
        if outcome == "up-to-date" and total.tasks.get(name) == "built":
            continue
        total.tasks[name] = outcome
        if outcome == "failed":
            total.reasons[name] = report.reasons.get(name, "failed")
        else:
            total.reasons.pop(name, None)
    total.exit_code = ExitCode.FAILED if any(v == "failed" for v in total.tasks.values()) else ExitCode.OK


@dataclass
class BatchedRun:
    """One `mksap run --batch` invocation: rounds of build, submit, wait, fetch."""

    build: Build
    api: BatchAPI
    options: BatchOptions
    notice: Callable[[str], None]
    quiet: bool = False
    store: BatchStore = field(init=False)
    state: BatchState = field(init=False)
    provider: Provider = field(init=False)
    watcher: BatchWatcher = field(init=False)

    def __post_init__(self) -> None:
        self.store = BatchStore.for_settings(self.build.settings)
        self.state = self.store.load()
        self.provider = self.build.runtime.providers()[0]
        self.watcher = BatchWatcher(
            api=self.api,
            store=self.store,
            state=self.state,
            runtime=self.build.runtime,
            provider=self.provider,
            poll_interval=self.options.poll_interval,
            status_every=self.options.status_every,
            say=self._say,
            notice=self.notice,
        )

    def run(self, questions: list[Question], *, jobs: int, force: bool) -> RunReport:
        total = RunReport()
        runtime = self.build.runtime
        collector = Collector(self.store, self.state, self.provider.name, self.options.failures)
        runtime.miss_handler = collector
        try:
            with interrupts_as_keyboard():
                self.resolve_pending()
                self._rounds(collector, questions, total, jobs=jobs, force=force)
        except KeyboardInterrupt as e:
            runtime.cancel_all()
            total.interrupted = "SIGTERM" if isinstance(e, Terminated) else "SIGINT"
            total.exit_code = exit_code_for(e)
        finally:
            runtime.miss_handler = None
        if total.interrupted and self.state.unfetched():
            self.notice("submitted batches keep processing; `mksap run --batch` again collects them (`mksap batches`)")
        return total

    def _rounds(
        self, collector: Collector, questions: list[Question], total: RunReport, *, jobs: int, force: bool
    ) -> None:
        pending: dict[str, LLMRequest] = {}
        for round_no in range(1, self.options.max_rounds + 1):
            if self.watcher.wait_and_fetch():
                self.notice("stopping: a batch was canceled meanwhile; `mksap run --batch` resubmits its requests")
                total.exit_code = max(total.exit_code, ExitCode.FAILED)
                return
            self.build.failures_this_run.clear()
            progress = choose_progress(self.quiet)
            report = run_build(self.build, questions, jobs=jobs, force=force and round_no == 1, progress=progress)
            merge_reports(total, report)
            if report.interrupted:
                total.interrupted, total.exit_code = report.interrupted, report.exit_code
                return
            pending = collector.take()
            if not pending:
                self.finish(collector.served)
                return
            if round_no < self.options.max_rounds:
                self._say(f"batch round {round_no}: {len(pending)} request(s) wait for answers")
                self.submit(pending, round_no)
        self.notice(
            f"stopped after {self.options.max_rounds} rounds with {len(pending)} request(s) still unanswered; "
            "run `mksap run --batch` again to continue"
        )

    def resolve_pending(self) -> None:
        """Creates an earlier run sent without seeing the answer (it was killed meanwhile):
        adopt the batch each one made, or forget it when it made none (see `batch.pending`)."""
        for pending in list(self.state.pending):
            lookup = look_up(self.api, self.build.runtime, self.state, self.store, pending)
            if lookup.candidates:  # paying again might pay twice; waiting tells them apart
                raise MksapError(
                    f"{lookup.describe(pending)}: run `mksap run --batch` again when they have ended "
                    "(`mksap batches` lists them)"
                )
            record = pending.record(lookup.found) if lookup.found is not None else None
            self.store.end_create(self.state, pending, record)
            self.notice(lookup.describe(pending) + ("; adopted, its answers will be used" if record else ""))

    def submit(self, pending: dict[str, LLMRequest], round_no: int) -> None:
        """Send `pending` as one or more batches. Each create is recorded before it is sent
        (with its request keys) and replaced by its batch the moment that exists, so a crash
        at any point leaves nothing the next run cannot find (`resolve_pending`)."""
        items = [self.api.item(key, request) for key, request in pending.items() if KEY.match(key)]
        for chunk in split(items, self.options.max_requests, self.options.max_bytes):
            before = PendingCreate.before_create(
                requests=len(chunk), round_no=round_no, provider=self.provider.name, model=self.provider.model
            )
            self.store.begin_create(self.state, before, [item["custom_id"] for item in chunk])
            info, interrupt = self._create(chunk)  # a ProviderError leaves `before` for the next run
            record = BatchRecord.submitted(
                info, requests=len(chunk), round_no=round_no, provider=self.provider.name, model=self.provider.model
            )
            self.store.end_create(self.state, before, record)
            self.watcher.seen_running.add(info.id)
            self._say(f"batch {info.id}: submitted {len(chunk)} request(s) (round {round_no})")
            if interrupt is not None:
                raise interrupt

    def _create(self, chunk: list[dict[str, Any]]) -> tuple[BatchInfo, KeyboardInterrupt | None]:
        """Create one batch. An interrupt meanwhile waits for the answer first (the batch may
        exist already and must be recorded, or a later run would pay for it again)."""
        future = self.build.runtime.start(self.api.create(chunk))
        interrupt: KeyboardInterrupt | None = None
        while True:
            try:
                return future.result(), interrupt
            except KeyboardInterrupt as e:
                interrupt = e

    def finish(self, served: set[str]) -> None:
        """The builds are done with the answers and failure notes they took: drop those (the
        answers are cached now). Others, e.g. of targets this run did not build, stay."""
        self.store.drop(served)
        if served & self.state.failures.keys():
            self.state.failures = {k: v for k, v in self.state.failures.items() if k not in served}
            self.store.save(self.state)

    def _say(self, text: str) -> None:
        if not self.quiet:
            self.notice(text)


def run_batched(
    build: Build,
    questions: list[Question],
    *,
    jobs: int,
    force: bool = False,
    quiet: bool = False,
    options: BatchOptions | None = None,
    notice: Callable[[str], None] = lambda message: None,
) -> RunReport:
    """Build `questions` with every LLM request sent through the provider's batch API."""
    api = batch_api_of(build)
    batched = BatchedRun(build, api, options or BatchOptions(), notice, quiet)
    return batched.run(questions, jobs=jobs, force=force)
