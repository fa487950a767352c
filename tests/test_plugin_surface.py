"""Plugins own their surface: an exporter's subcommand and --help come from its options model,
a plugin adds commands through `register_commands`, plugin options come from
`[plugins.<name>]` and `MKSAP_<PLUGIN>_<OPTION>`; and read-only commands change nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from mksap.build.lock import BuildLock
from mksap.contracts.errors import ExitCode
from tests.conftest import Workspace
from tests.test_registry import write_module

EXPORTER = """
from pathlib import Path

from pydantic import Field

from mksap.atomic import write_text
from mksap.contracts.exporter import Exporter, ExportOptions, selected
from mksap.contracts.errors import MksapError


class WordsOptions(ExportOptions):
    minimum: int = Field(3, ge=1, description="leave out statements with fewer words than this")
    marker: str = Field("*", description="what each line starts with")


class WordsExporter(Exporter[WordsOptions]):
    \"\"\"One line per statement with its word count (a third-party test exporter).\"\"\"

    name = "words"
    version = "1"
    suffix = ".txt"
    unit = "lines"
    options_model = WordsOptions

    def export(self, questions, options, path: Path):
        from mksap.contracts.exporter import ExportWritten

        lines = []
        for q in questions:
            keep, _ = selected(q, options)
            lines += [f"{options.marker} {len(s.statement.split())} {s.stable_id}" for s in keep
                      if len(s.statement.split()) >= options.minimum]
        write_text(path, "\\n".join(lines) + "\\n")
        return ExportWritten(items=len(lines))


def register_exporters(register):
    register(WordsExporter)


def register_commands(app):
    @app.command("hello")
    def hello(name: str = "world") -> None:
        \"\"\"Say hello (a command a plugin added).\"\"\"
        print(f"hello {name}")
"""


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = write_module(tmp_path, monkeypatch, "mksap_test_words_plugin", EXPORTER)
    monkeypatch.setenv("MKSAP_PLUGINS", name)
    return name


def test_a_third_party_exporter_gets_a_subcommand_with_its_options(ws: Workspace, plugin: str) -> None:
    listing = ws.cli("export", "--help")
    assert listing.code == 0 and re.search(r"^\s+words\s+One line per statement", listing.out, re.M), listing.out
    help_text = ws.cli("export", "words", "--help")
    assert help_text.code == 0, help_text.text
    words = " ".join(help_text.out.split())  # the help is wrapped to the terminal
    assert "--minimum <int> leave out statements with fewer words than this. [default: 3]" in words
    assert "--marker" in words and "--include-flagged" in words

    assert ws.cli("run", "-q").code == 0
    out = ws.root / "w.txt"
    result = ws.cli("export", "words", "-o", str(out), "--minimum", "12", *ws.location_flags())
    assert result.code == 0, result.text
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines and all(int(line.split()[1]) >= 12 for line in lines)
    assert f"wrote {out}: {len(lines)} lines" in result.out


def test_an_exporter_option_default_comes_from_its_config_table(ws: Workspace, plugin: str) -> None:
    (ws.root / "mksap.toml").write_text('[plugins.words]\nmarker = "#"\nminimum = 1\n', encoding="utf-8")
    assert ws.cli("run", "-q").code == 0
    out = ws.root / "w.txt"
    assert ws.cli("export", "words", "-o", str(out), *ws.location_flags()).code == 0
    assert out.read_text(encoding="utf-8").startswith("# ")
    flagged = ws.cli("export", "words", "-o", str(out), "--marker", "+", *ws.location_flags())  # flag beats config
    assert flagged.code == 0 and out.read_text(encoding="utf-8").startswith("+ ")
    bad = ws.cli("export", "words", "-o", str(out), "--minimum", "0", *ws.location_flags())
    assert bad.code == ExitCode.ERROR and "--minimum" in bad.err and "greater than or equal to 1" in bad.err


def test_a_plugin_command_is_added_and_a_clashing_one_is_refused(
    ws: Workspace, plugin: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hello = ws.cli("hello", "--name", "Anki")
    assert hello.code == 0 and hello.out.strip() == "hello Anki"
    clash = write_module(
        tmp_path,
        monkeypatch,
        "mksap_test_clash_plugin",
        """
        def register_commands(app):
            @app.command("run")
            def run() -> None:
                print("not mksap's run")
        """,
    )
    monkeypatch.setenv("MKSAP_PLUGINS", f"{plugin},{clash}")
    plugins = ws.cli("plugins")
    assert re.search(rf"FAILED {clash}.register_commands .*run already taken", plugins.out), plugins.out
    assert ws.cli("hello").code == 0  # the other plugin's command is still there
    dry = ws.cli("run", "--dry-run")
    assert dry.code == 0 and "not mksap's run" not in dry.out


def test_plugin_options_and_their_sources_are_shown_by_config(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    (ws.root / "mksap.toml").write_text('[plugins.anthropic]\nbase_url = "http://127.0.0.1:9"\n', encoding="utf-8")
    monkeypatch.setenv("MKSAP_NLP_MODEL", "rules")
    rows = {r["name"]: r for r in json.loads(ws.cli("config", "--json", locations=False).out)["data"]}
    assert rows["plugins.anthropic.base_url"]["value"] == "http://127.0.0.1:9"
    assert (
        rows["plugins.anthropic.base_url"]["source"].startswith("project")
        and "[plugins.anthropic]" in (rows["plugins.anthropic.base_url"]["source"])
    )
    assert (rows["plugins.nlp.model"]["value"], rows["plugins.nlp.model"]["source"]) == ("rules", "env MKSAP_NLP_MODEL")
    assert rows["plugins.anki.deck"]["value"] == "MKSAP"


def test_a_command_plugins_options_are_shown_by_config(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mksap sync anki` is a command, not a stage, provider or exporter: its `[plugins.anki-sync]`
    options are still listed, with their sources, and its key never shown."""
    monkeypatch.setenv("MKSAP_ANKI_SYNC_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("MKSAP_ANKI_SYNC_API_KEY", "connect-SECRET-42")
    result = ws.cli("config", "--json", locations=False)
    rows = {r["name"]: r for r in json.loads(result.out)["data"]}
    url = rows["plugins.anki-sync.url"]
    assert (url["value"], url["source"]) == ("http://127.0.0.1:9999", "env MKSAP_ANKI_SYNC_URL")
    assert rows["plugins.anki-sync.api_key"]["source"] == "env MKSAP_ANKI_SYNC_API_KEY"
    assert "connect-SECRET-42" not in result.text


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under `root` with its size and mtime: what a read-only command must not touch."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_read_only_commands_take_no_lock_and_write_nothing(ws: Workspace) -> None:
    assert ws.cli("run", "-q").code == 0
    (ws.data / "cv" / "cvmcq24101" / "cvmcq24101.json").write_text(
        (ws.data / "cv" / "cvmcq24101" / "cvmcq24101.json").read_text(encoding="utf-8").replace("a", "A", 1),
        encoding="utf-8",
    )
    with BuildLock(ws.build_dir).acquire():  # a build is running: read-only commands still answer
        before = tree(ws.root)
        status = ws.cli("status", "--json")
        assert status.code == 0, status.text
        assert json.loads(status.out)["data"]["questions"]["cvmcq24101"] == "stale"
        for args in (("show", "cvmcq24101"), ("config",), ("plugins",), ("doctor",)):
            result = ws.cli(*args)
            assert result.code in (0, 1), (args, result.text)
        env = ws.doit_env()
        listed = subprocess.run(ws.doit_argv("list"), cwd=ws.root, env=env, capture_output=True, text=True)
        assert listed.returncode == 0 and "parse" in listed.stdout.split(), listed.stdout + listed.stderr
        # `doit info` exits 1 for a task that is not up to date (doit's convention)
        info = subprocess.run(
            ws.doit_argv("info", "parse:cvmcq24101"), cwd=ws.root, env=env, capture_output=True, text=True
        )
        assert info.returncode == 1 and "changed" in info.stdout and "cvmcq24101.json" in info.stdout, info.stderr
        assert "another build" not in listed.stderr + info.stderr
        assert tree(ws.root) == before


def test_a_config_change_is_planned_without_writing_its_fingerprint(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ws.cli("run", "-q").code == 0
    fingerprints = {p: p.read_bytes() for p in (ws.build_dir / "fingerprints").iterdir()}
    monkeypatch.setenv("MKSAP_VALIDATE_KEEP_REJECTED", "true")  # the validate stage's configuration changes
    dry = ws.cli("run", "--dry-run")
    assert dry.code == 0
    planned = dict(line.split(": ", 1) for line in dry.out.splitlines() if line.count(":") >= 2)
    validate = {n: why for n, why in planned.items() if n.startswith("validate:")}
    assert len(validate) == len(ws.qids()) and set(validate.values()) == {"config of stage validate changed"}
    rest = {why for n, why in planned.items() if n not in validate}
    assert rest == {"upstream validate reruns"}, dry.out  # assemble follows; nothing upstream reruns
    assert {p: p.read_bytes() for p in fingerprints} == fingerprints  # nothing written
    assert sorted(os.listdir(ws.build_dir / "fingerprints")) == sorted(p.name for p in fingerprints)
