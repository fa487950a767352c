"""doit's file checker, taught that mksap's own output fields are not input.

With `--in-place`, statements are written into the question files themselves. To the engine a
question file is therefore unchanged as long as every *original* field is: the digest of a
question JSON ignores the fields mksap writes. Other files use doit's md5 check as is (which
hashes only when the mtime changed, and gives early cut-off).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from doit.dependency import MD5Checker, get_file_md5

from mksap.bank import QUESTION_ID
from mksap.contracts.output import source_document


def _is_question_file(path: str) -> bool:
    head, name = os.path.split(path)
    stem = name[:-5] if name.endswith(".json") else None
    return stem is not None and os.path.basename(head) == stem and QUESTION_ID.match(stem) is not None


#: A question file larger than this is digested as plain bytes (streamed), never loaded: the
#: parse stage refuses it anyway (`max_question_bytes`), and the checker runs for every file
#: of every invocation, in doit's main thread.
DIGEST_MAX_BYTES = 64 * 1024 * 1024


def source_digest(path: str) -> str:
    """md5 of a question file's source fields; plain md5 when it is not a JSON object (or too
    big, or too deeply nested to digest: whatever the file holds, this never raises on it)."""
    if not _is_question_file(path) or os.path.getsize(path) > DIGEST_MAX_BYTES:
        return get_file_md5(path)
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
        if not isinstance(doc, dict):
            return get_file_md5(path)
        canonical = json.dumps(source_document(doc), sort_keys=True, ensure_ascii=False).encode()
    except (ValueError, UnicodeError, RecursionError, MemoryError):
        # not JSON, a lone surrogate escape, nesting past the recursion limit: the bytes are
        # the digest (the parse stage says what is wrong with the file)
        return get_file_md5(path)
    return "q:" + hashlib.md5(canonical).hexdigest()


class SourceChecker(MD5Checker):
    """MD5Checker whose digest of a question file covers only its source fields."""

    def check_modified(self, file_path: str, file_stat: os.stat_result, state: Any) -> bool:
        timestamp, size, digest = state
        if file_stat.st_mtime == timestamp:
            return False
        if not str(digest).startswith("q:") and file_stat.st_size != size:
            return True
        return digest != source_digest(file_path)

    def get_state(self, dep: str, current_state: Any) -> Any:
        timestamp = os.path.getmtime(dep)
        if current_state and current_state[0] == timestamp:
            return None
        return timestamp, os.path.getsize(dep), source_digest(dep)
