"""Token usage and estimated cost per provider/model: printed after a run and accumulated in
`<cache_dir>/build/usage.json` so `mksap status` can show the totals."""

from __future__ import annotations

import json
from typing import Any

from mksap.atomic import write_json
from mksap.contracts.provider import Usage
from mksap.llm.runtime import ProviderRuntime
from mksap.settings import Settings

USAGE_FILE = "usage.json"


def record_usage(settings: Settings, runtime: ProviderRuntime) -> list[str]:
    """Add this run's totals to the ledger; return one line per provider/model used."""
    path = settings.build_dir() / USAGE_FILE
    try:
        ledger: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        ledger = {}
    lines = []
    for (name, model), t in runtime.totals.items():
        if not (t.calls or t.cache_hits or t.merged):
            continue
        cost = runtime.estimate_cost(name, model, t.usage)
        u = t.usage
        lines.append(
            f"{name}/{model}: {t.calls} calls, {t.cache_hits} cache hits, {t.merged} merged; tokens "
            f"{u.input_tokens} in, {u.output_tokens} out, {u.cache_creation_input_tokens} cache write, "
            f"{u.cache_read_input_tokens} cache read" + (f"; est. ${cost:.4f}" if cost is not None else "")
        )
        entry = ledger.setdefault(
            f"{name}/{model}", {"calls": 0, "cache_hits": 0, "cost_usd": 0.0, **dict.fromkeys(Usage.model_fields, 0)}
        )
        entry["calls"] += t.calls
        entry["cache_hits"] += t.cache_hits
        entry["cost_usd"] = round(entry["cost_usd"] + (cost or 0.0), 6)
        for k in Usage.model_fields:
            entry[k] += getattr(u, k)
    if lines:
        write_json(path, ledger)
    return lines


def usage_totals(settings: Settings) -> dict[str, Any]:
    try:
        return json.loads((settings.build_dir() / USAGE_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return {}
