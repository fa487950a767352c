"""Generate a bank of N questions by copying the bundled examples under new question ids.

python bench/make_bank.py OUT_DIR [N]      (default N = 2200)
"""

from __future__ import annotations

import json
import shutil
import sys
from itertools import cycle
from pathlib import Path

from mksap.bank import QUESTION_ID

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def make_bank(out: Path, n: int, *, unique: bool = True) -> list[str]:
    """Copy example questions round-robin into `out`, renumbering ids; returns the new ids.

    With `unique`, each copy's critique and key points get a sentence of their own, so every
    question makes its own LLM requests (as a real bank does); tables stay shared.
    """
    sources = sorted(p for p in EXAMPLES.glob("*/*/*.json"))
    if out.exists():
        shutil.rmtree(out)
    made = []
    for i, src in zip(range(n), cycle(sources), strict=False):
        m = QUESTION_ID.match(src.stem)
        assert m, src
        qid = f"{m['system']}{m['type']}{10 + i // 1000:02d}{i % 1000:03d}"
        folder = out / m["system"] / qid
        shutil.copytree(src.parent, folder)
        (folder / src.name).unlink()
        doc = json.loads(src.read_text(encoding="utf-8"))
        doc["question_id"] = qid
        if unique:
            doc["critique"] += f" Guideline item {i} recommends reassessing the response to treatment periodically."
            if doc.get("key_points"):
                doc["key_points"][0] += f" Guideline item {i} applies."
        (folder / f"{qid}.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        made.append(qid)
    return made


if __name__ == "__main__":
    target = Path(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 2200
    ids = make_bank(target, count)
    print(f"{len(ids)} questions in {target}")
