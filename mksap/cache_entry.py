"""The function joblib memoises. NEVER EDIT IT.

joblib wipes every cached answer when the memoised function's source changes (even a comment),
so it lives alone here: a stable shim whose only hashed argument is the request hash. The
answer itself is an ignored argument, so joblib's metadata.json never holds a prompt or a key.
"""


def stored_answer(key, answer):
    if answer is None:
        raise LookupError(key)
    return answer
