"""Shared fixtures for the end-to-end tests.

Every test runs in its own world under `tmp_path`: its own HOME, XDG folders, user config
path (pointing at a file that does not exist), a fresh copy of the example bank in
`tmp_path/data`, and `tmp_path` as working directory so no `mksap.toml` is picked up. No
`MKSAP_*` or `ANTHROPIC_*` variable leaks in from the caller, so the default provider is the
offline one and nothing touches the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
DODO = REPO / "dodo.py"
STAGES = ("parse", "nlp", "critique", "keypoints", "tables", "cloze", "validate", "assemble")
#: Stages with an artifact <cache>/build/<sys>/<qid>/<stage>.json (assemble writes the output).
ARTIFACT_STAGES = STAGES[:-1]


def example_qids() -> list[tuple[str, str]]:
    """(system, qid) of every example question, sorted."""
    return sorted(
        (p.parent.parent.name, p.parent.name)
        for p in EXAMPLES.glob("*/*/*.json")
        if p.stem == p.parent.name
    )


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class Workspace:
    """One test's private world. `cli()` runs `mksap` in-process, `spawn()` as a real process."""

    root: Path
    data: Path
    out: Path
    cache: Path
    capsys: pytest.CaptureFixture[str]

    # -- layout --------------------------------------------------------------------------
    @property
    def build_dir(self) -> Path:
        return self.cache / "build"

    def question_json(self, qid: str) -> Path:
        return self.data / qid[:2] / qid / f"{qid}.json"

    def output_json(self, qid: str) -> Path:
        return self.out / qid[:2] / qid / f"{qid}.json"

    def artifact(self, qid: str, stage: str) -> Path:
        return self.build_dir / qid[:2] / qid / f"{stage}.json"

    def task_files(self, qid: str) -> dict[str, Path]:
        """stage -> the file that stage's task writes for `qid`."""
        files = {s: self.artifact(qid, s) for s in ARTIFACT_STAGES}
        files["assemble"] = self.output_json(qid)
        return files

    def qids(self) -> list[str]:
        return sorted(
            p.parent.name for p in self.data.glob("*/*/*.json") if p.stem == p.parent.name
        )

    # -- running -------------------------------------------------------------------------
    def location_flags(self) -> list[str]:
        return ["--data", str(self.data), "--out", str(self.out), "--cache-dir", str(self.cache)]

    def cli(self, *args: str, locations: bool = True) -> Result:
        """`mksap <args>` in-process through `mksap.cli.main`, with this workspace's locations."""
        from mksap.cli import main

        argv = list(args)
        if locations and argv and argv[0] in ("run", "status", "show", "config"):
            argv += self.location_flags()
        self.capsys.readouterr()  # drop anything printed before
        code = main(argv)
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(extra)
        return env

    def spawn(self, *args: str, locations: bool = True, **popen: Any) -> subprocess.Popen[str]:
        """`python -m mksap.cli <args>` as a child process (signals, concurrency)."""
        argv = list(args)
        if locations and argv and argv[0] in ("run", "status", "show", "config"):
            argv += self.location_flags()
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen(
            [sys.executable, "-m", "mksap.cli", *argv],
            cwd=self.root,
            text=True,
            env=self.env(),
            **popen,
        )

    def doit_argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "doit", "-f", str(DODO), "--dir", str(self.root), *args]

    def doit_env(self, **extra: str) -> dict[str, str]:
        """The environment plain `doit` gets: mksap settings reach dodo.py as MKSAP_*."""
        locations = {"MKSAP_DATA": str(self.data), "MKSAP_OUT": str(self.out), "MKSAP_CACHE_DIR": str(self.cache)}
        return self.env(**locations, **extra)

    def doit(self, *args: str, timeout: float = 120) -> Result:
        """Plain `doit` with the repo's dodo.py, on this workspace's locations (via MKSAP_*)."""
        proc = subprocess.run(
            self.doit_argv(*args),
            cwd=self.root,
            env=self.doit_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def spawn_doit(self, *args: str, **env: str) -> subprocess.Popen[str]:
        """Plain `doit` as a child process (signals), with extra environment variables."""
        return subprocess.Popen(
            self.doit_argv(*args),
            cwd=self.root,
            env=self.doit_env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    # -- snapshots -----------------------------------------------------------------------
    def identities(self) -> dict[str, tuple[int, int, int]]:
        """(inode, mtime_ns, ctime_ns) of every per-question file a task writes (outputs and
        <build>/<sys>/<qid>/<stage>.json): a rewrite (atomic rename) changes all three, an
        untouched file keeps them. Run-level files (fingerprints, usage ledgers) are left out."""
        files = list(self.out.glob("*/*/*.json")) + list(self.build_dir.glob("*/*/*.json"))
        ids: dict[str, tuple[int, int, int]] = {}
        for p in sorted(files):
            st = p.stat()
            ids[str(p)] = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
        return ids


def changed_files(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {k for k in after if before.get(k) != after[k]}


def hash_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def summary_line(text: str) -> str:
    """The run's summary line: 'N built, N up to date, N failed (N questions) ...'."""
    lines = [line for line in text.splitlines() if " built, " in line and " up to date, " in line]
    assert lines, f"no summary line in:\n{text}"
    return lines[-1]


def task_counts(text: str) -> tuple[int, int]:
    """(ran, up to date) from the run summary's per-task line 'tasks: N ran, N up to date'."""
    found = re.findall(r"^tasks: (\d+) ran, (\d+) up to date", text, re.MULTILINE)
    assert found, f"no 'tasks:' line in:\n{text}"
    ran, up_to_date = found[-1]
    return int(ran), int(up_to_date)


def planned_tasks(text: str) -> dict[str, str]:
    """`mksap run --dry-run` output -> {task name: reason}."""
    tasks: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, reason = line.partition(": ")
        if sep and ":" in name and " " not in name:
            tasks[name] = reason
    return tasks


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME, XDG folders and the user config under tmp_path; no MKSAP_*/ANTHROPIC_* leak in."""
    for name in list(os.environ):
        if name.startswith("MKSAP_") or name in (
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_BASE_URL",
            "ANTHROPIC_AUTH_TOKEN",
        ):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("MKSAP_USER_CONFIG", str(tmp_path / "no-such-user-config.toml"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def ws(isolated_env: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Workspace]:
    """A private copy of the example bank and empty output / cache folders."""
    root = isolated_env
    data = root / "data"
    shutil.copytree(EXAMPLES, data)
    yield Workspace(root=root, data=data, out=root / "out", cache=root / "cache", capsys=capsys)


@pytest.fixture
def built(ws: Workspace) -> Workspace:
    """The workspace after one successful cold run."""
    result = ws.cli("run", "-q")
    assert result.code == 0, result.text
    return ws


def make_big_bank(data: Path, copies: int) -> list[str]:
    """Copy every example question `copies` times under new ids (question_id, folder and file
    names rewritten consistently). Returns the new ids."""
    originals = [(s, q) for s, q in example_qids()]
    new_ids: list[str] = []
    counter = 0
    for _ in range(copies):
        for system, qid in originals:
            counter += 1
            new = f"{qid[:-3]}{counter:03d}"
            assert new != qid and len(new) == len(qid)
            src = EXAMPLES / system / qid
            dst = data / system / new
            shutil.copytree(src, dst)
            text = (dst / f"{qid}.json").read_text(encoding="utf-8").replace(qid, new)
            (dst / f"{qid}.json").unlink()
            (dst / f"{new}.json").write_text(text, encoding="utf-8")
            new_ids.append(new)
    return new_ids
