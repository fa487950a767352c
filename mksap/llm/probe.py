"""What the providers of a run can do.

The runtime probes each provider before its first call and says what it lacks (`lacking`).
`mksap doctor --probe` asks each provider of the run's chain (`probe_providers`: `Provider.probe()`
on the runtime's event loop) and shows `chain_lines`: one line per provider, the structured
output it will use, what it lacks, why, and which provider of the chain takes over if it stops.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from mksap.contracts.errors import MksapError
from mksap.contracts.provider import Capabilities, Provider

if TYPE_CHECKING:
    from mksap.llm.runtime import ProviderRuntime

#: How each structured-output mode gets an answer that fits the schema.
MODE_TEXT = {
    "json_schema": "the server enforces the JSON schema",
    "json_mode": "JSON mode (response_format json_object) with the schema in the prompt",
    "prompted": "the schema in the prompt, using the first JSON object of each answer",
}


Found = tuple[Provider, Capabilities | MksapError]


def chain_lines(found: list[Found]) -> list[str]:
    """One line per provider of a chain, in order, from what `probe_providers` found. A provider
    that cannot be probed (no key, auth failure, server down) gets a line saying so; a run still
    decides, call by call, when it stops and the next one takes over."""
    lines = []
    for i, (provider, result) in enumerate(found):
        line = describe(provider, result)
        if i + 1 < len(found) and not provider.local:
            line += f"; if it stops, then '{found[i + 1][0].name}'"
        lines.append(line)
    return lines


def probe_providers(runtime: ProviderRuntime) -> list[Found]:
    """Each provider of the run's chain with what its probe found (or the error that stopped
    it). Call it from outside the runtime's loop (e.g. the main thread)."""
    providers = runtime.providers()  # (their notices already go to the runtime's channel)
    results = runtime.call(_probe_all(providers))
    return list(zip(providers, results, strict=True))


def describe(provider: Provider, result: Capabilities | MksapError) -> str:
    """The line of one provider: what it uses, what it lacks, and the notes of its probe."""
    if provider.local:
        return f"provider '{provider.name}': answers are computed locally (no model, nothing to lack)"
    head = f"provider '{provider.name}' ({provider.model})"
    reason = type(provider).unready(provider.settings)
    if reason is not None:
        return f"{head}: not ready: {reason}"
    if isinstance(result, MksapError):
        return f"{head}: probe failed: {result}"
    parts = [f"{head}: structured output: {MODE_TEXT[result.structured_output]}"]
    if lacks := _lacks(result):
        parts.append("lacks: " + ", ".join(lacks))
    return "; ".join(parts + result.notes)


def lacking(provider: Provider, found: Capabilities) -> list[str]:
    """What a run says once a provider's first-call check passed: its line, when it lacks
    something or its probe noted something (nothing for a provider with every ability)."""
    if provider.local or not (_lacks(found) or found.notes):
        return []
    return [describe(provider, found)]


def _lacks(found: Capabilities) -> list[str]:
    return [
        name
        for name, has in (
            ("enforced JSON schema", found.structured_output == "json_schema"),
            ("prompt caching", found.prompt_caching),
            ("batch API", found.batches),
        )
        if not has
    ]


async def _probe_all(providers: list[Provider]) -> list[Capabilities | MksapError]:
    async def one(provider: Provider) -> Capabilities | MksapError:
        if provider.local or type(provider).unready(provider.settings) is not None:
            return await Provider.probe(provider)  # what it declares: nothing to ask
        try:
            return await provider.probe()
        except MksapError as e:
            return e

    return list(await asyncio.gather(*(one(p) for p in providers)))
