"""Prompts are package data files (`mksap_plugins/prompts/<name>.md`) with a version line."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    text: str

    def fingerprint(self) -> dict[str, str]:
        """What a stage's configuration records: the version and a digest of the full text."""
        return {
            "prompt_version": f"{self.name}@{self.version}",
            "prompt_sha256": hashlib.sha256(self.text.encode()).hexdigest(),
        }


@cache
def load_prompt(name: str) -> Prompt:
    text = (files("mksap_plugins") / "prompts" / f"{name}.md").read_text(encoding="utf-8")
    m = re.match(r"<!--\s*version:\s*(\S+)\s*-->\s*", text)
    version = m.group(1) if m else "0"
    return Prompt(name, version, text[m.end() :] if m else text)
