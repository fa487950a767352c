"""A registered provider for tests: answers like the offline rules but is *not* local, so it
goes through the cache, the limits and in-flight merging like a paid provider.

Load it with MKSAP_PLUGINS=tests.fakes.fake_provider. Every real call appends one line
"<task> <cache key> <source>" (the request's source kind: critique, key_point, table, or -) to
the file named by FAKE_PROVIDER_LOG, so tests in other processes can count paid calls by kind
and look their answers up in the cache. FAKE_PROVIDER_DELAY (seconds) makes each call take
that long.
"""

from __future__ import annotations

import asyncio
import os

from mksap.contracts.hookspecs import Register
from mksap.contracts.provider import LLMRequest, LLMResponse, Usage
from mksap_plugins.providers.offline import OfflineProvider


class FakeProvider(OfflineProvider):
    """Offline rules behind a paid-provider facade (tests only)."""

    name = "fake"
    local = False

    @property
    def model(self) -> str:
        return "fake-1"

    async def complete(self, request: LLMRequest) -> LLMResponse:
        delay = float(os.environ.get("FAKE_PROVIDER_DELAY", "0") or 0)
        if delay:
            await asyncio.sleep(delay)
        log = os.environ.get("FAKE_PROVIDER_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as f:
                source = request.context.get("source") or "-"  # critique, key_point, table, ...
                f.write(f"{request.task} {request.key(self.name, self.model)} {source}\n")
        answer = await super().complete(request)
        usage = Usage(input_tokens=len(request.system) // 4, output_tokens=len(answer.raw_text) // 4)
        return answer.model_copy(update={"provider": self.name, "model": self.model, "usage": usage})


def register_providers(register: Register) -> None:
    register(FakeProvider)
