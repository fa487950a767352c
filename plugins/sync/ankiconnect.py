"""A small client for AnkiConnect, the Anki add-on that answers JSON over HTTP (protocol 6).

Every request is `POST <url>` with `{"action", "version": 6, "params", "key"}`; the add-on
answers HTTP 200 with `{"result", "error"}` even when the action failed. `multi` sends many
actions in one request, each with its own key and version. What goes wrong before an action
runs (Anki not running, a server that is not AnkiConnect, another protocol version, a wrong
key) is an `AnkiConnectError` whose one line names the fix.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mksap.contracts.errors import MksapError

API_VERSION = 6
KEY_ERROR = "valid api key must be provided"
#: Sub-actions per `multi` request: big enough to need few requests, small enough that one
#: request never holds Anki's main thread for long.
MULTI_CHUNK = 250


class AnkiConnectError(MksapError):
    """AnkiConnect could not be reached, is not AnkiConnect protocol 6, refused our key, or
    failed an action."""


@dataclass(frozen=True)
class Reply:
    """One action's answer: `error` is None when it succeeded."""

    action: str
    result: Any
    error: str | None


class AnkiConnect:
    """AnkiConnect at `url` (e.g. http://127.0.0.1:8765). `api_key` is sent only when given."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/") or url
        self._key = api_key or None
        self.timeout = timeout
        # AnkiConnect listens on this machine: an http_proxy from the environment must not
        # see (or swallow) requests to 127.0.0.1.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _body(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"action": action, "version": API_VERSION, "params": params}
        if self._key is not None:
            body["key"] = self._key
        return body

    def _post(self, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            raise AnkiConnectError(
                f"{self.url} answered HTTP {e.code}, not like AnkiConnect; check --url "
                "(and, for HTTP 403, the add-on's webCorsOriginList)"
            ) from None
        except urllib.error.URLError as e:
            raise AnkiConnectError(self._unreachable(e.reason)) from None
        except TimeoutError:
            raise AnkiConnectError(
                f"AnkiConnect at {self.url} did not answer within {self.timeout:g} s; "
                "is Anki busy or showing a dialog? close it and try again"
            ) from None
        except (ConnectionError, OSError) as e:
            raise AnkiConnectError(self._unreachable(e)) from None
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise AnkiConnectError(f"{self.url} does not answer like AnkiConnect (not JSON); check --url") from None

    def _unreachable(self, reason: object) -> str:
        if isinstance(reason, ConnectionRefusedError):
            why = "connection refused"
        elif isinstance(reason, (TimeoutError, socket.timeout)):
            why = f"no answer within {self.timeout:g} s"
        else:
            why = getattr(reason, "strerror", None) or str(reason)
        return f"cannot reach AnkiConnect at {self.url} ({why}): start Anki with the AnkiConnect add-on, or pass --url"

    def _reply(self, action: str, answer: Any) -> Reply:
        if not isinstance(answer, dict) or set(answer) != {"result", "error"}:
            raise AnkiConnectError(
                f"{self.url} does not answer like AnkiConnect protocol {API_VERSION}; "
                "update the AnkiConnect add-on, or check --url"
            )
        error = answer["error"]
        if error == KEY_ERROR:
            given = "the key given" if self._key else "no key"
            raise AnkiConnectError(
                f"AnkiConnect at {self.url} refused {given} ({KEY_ERROR}): pass the add-on's apiKey with "
                "--api-key or MKSAP_ANKI_SYNC_API_KEY (none if the add-on has none)"
            )
        return Reply(action, answer["result"], None if error is None else str(error))

    def call(self, action: str, **params: Any) -> Any:
        """The result of one action; its error raises `AnkiConnectError`."""
        reply = self._reply(action, self._post(self._body(action, params)))
        if reply.error is not None:
            raise AnkiConnectError(f"AnkiConnect {action} failed: {reply.error}")
        return reply.result

    def multi(self, actions: Sequence[tuple[str, dict[str, Any]]], per_request: int = MULTI_CHUNK) -> list[Reply]:
        """Every action's reply, sent `per_request` at a time through `multi`. A failed
        action does not stop the others: look at each reply's `error`."""
        replies: list[Reply] = []
        for start in range(0, len(actions), per_request):
            chunk = actions[start : start + per_request]
            results = self.call("multi", actions=[self._body(name, params) for name, params in chunk])
            if not isinstance(results, list) or len(results) != len(chunk):
                raise AnkiConnectError(
                    f"AnkiConnect multi answered {len(chunk)} actions unexpectedly; update the add-on"
                )
            replies += [self._reply(name, answer) for (name, _), answer in zip(chunk, results, strict=True)]
        return replies

    def multi_results(self, actions: Sequence[tuple[str, dict[str, Any]]], per_request: int = MULTI_CHUNK) -> list[Any]:
        """Every action's result; the first failed one raises `AnkiConnectError`."""
        replies = self.multi(actions, per_request)
        for reply in replies:
            if reply.error is not None:
                raise AnkiConnectError(f"AnkiConnect {reply.action} failed: {reply.error}")
        return [reply.result for reply in replies]

    def check(self) -> None:
        """Fail unless the server is AnkiConnect speaking protocol version 6 and takes our key."""
        version = self.call("version")
        if version != API_VERSION:
            raise AnkiConnectError(
                f"AnkiConnect at {self.url} speaks protocol version {version!r}; mksap needs version "
                f"{API_VERSION}: update the AnkiConnect add-on (Tools > Add-ons > Check for Updates)"
            )
