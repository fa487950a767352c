"""Where settings come from, through the CLI: flag > MKSAP_* env > ./mksap.toml > user config
file > default; relative paths in a config file resolve against that file's folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Workspace, example_qids, summary_line

N = len(example_qids())


def config_rows(ws: Workspace, *args: str) -> dict[str, dict[str, str]]:
    result = ws.cli("config", "--json", *args, locations=False)
    assert result.code == 0, result.text
    envelope = json.loads(result.out)
    assert envelope["kind"] == "config"
    return {row["name"]: row for row in envelope["data"]}


def test_config_shows_each_value_and_its_source(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = ws.root
    user_dir = root / "userconf"
    user_dir.mkdir()
    user_file = user_dir / "config.toml"
    user_file.write_text(
        'data = "udata"\nout = "uout"\ncache_dir = "ucache"\n'
        'model = "user-model"\nllm_cache_dir = "ullm"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("MKSAP_USER_CONFIG", str(user_file))
    (root / "mksap.toml").write_text(
        'data = "pdata"\nout = "pout"\ncache_dir = "pcache"\n', encoding="utf-8"
    )
    monkeypatch.setenv("MKSAP_OUT", "eout")
    monkeypatch.setenv("MKSAP_CACHE_DIR", "ecache")

    rows = config_rows(ws, "--cache-dir", "fcache", "--provider", "offline")

    assert (rows["cache_dir"]["value"], rows["cache_dir"]["source"]) == (
        str(root / "fcache"),
        "flag",
    )
    assert (rows["provider"]["value"], rows["provider"]["source"]) == ("offline", "flag")
    assert (rows["out"]["value"], rows["out"]["source"]) == (str(root / "eout"), "env MKSAP_OUT")
    assert rows["data"]["value"] == str(root / "pdata")
    assert rows["data"]["source"].startswith("project") and "mksap.toml" in rows["data"]["source"]
    assert rows["model"]["value"] == "user-model"
    assert (
        rows["model"]["source"].startswith("user config")
        and str(user_file) in rows["model"]["source"]
    )
    # relative to the user config file's folder, not the working directory
    assert rows["llm_cache_dir"]["value"] == str(user_dir / "ullm")
    assert (rows["jobs"]["value"], rows["jobs"]["source"]) == ("0", "default")  # 0: follow the providers

    text = ws.cli("config", "--cache-dir", "fcache", locations=False)
    assert text.code == 0
    lines = {line.split()[0]: line for line in text.out.splitlines() if line.strip()}
    assert str(root / "fcache") in lines["cache_dir"] and lines["cache_dir"].rstrip().endswith(
        "flag"
    )
    assert lines["out"].rstrip().endswith("env MKSAP_OUT")
    assert str(user_file) in text.out


def test_defaults_without_any_config(ws: Workspace) -> None:
    rows = config_rows(ws)
    assert all(row["source"] == "default" for row in rows.values()), rows
    assert rows["data"]["value"] == str(ws.root / "data")
    assert rows["provider"]["value"] == "auto"
    assert rows["plugins.anthropic.api_key"]["value"] == "not set"
    assert rows["plugins.nlp.model"]["value"] == "en_core_sci_sm"
    # the LLM cache defaults to the (isolated) user cache folder
    assert rows["llm_cache_dir"]["value"].startswith(str(ws.root / "home"))


def test_run_uses_the_project_file_in_the_working_directory(ws: Workspace) -> None:
    (ws.root / "mksap.toml").write_text(
        'data = "data"\nout = "built"\ncache_dir = "state"\n', encoding="utf-8"
    )
    result = ws.cli("run", "-q", locations=False)
    assert result.code == 0, result.text
    assert summary_line(result.err).startswith(f"{N} built")
    assert len(list((ws.root / "built").glob("*/*/*.json"))) == N
    assert (ws.root / "state" / "build").is_dir()
    assert not ws.out.exists()


def test_user_config_paths_resolve_against_its_folder(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = ws.root / "conf"
    conf.mkdir()
    (conf / "config.toml").write_text(
        '[mksap]\ndata = "../data"\nout = "out-user"\ncache_dir = "state"\n', encoding="utf-8"
    )
    monkeypatch.setenv("MKSAP_USER_CONFIG", str(conf / "config.toml"))
    elsewhere = ws.root / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    result = ws.cli("run", "-q", locations=False)

    assert result.code == 0, result.text
    assert len(list((conf / "out-user").glob("*/*/*.json"))) == N
    assert (conf / "state" / "build").is_dir()
    assert not any(elsewhere.iterdir()), (
        "relative paths were resolved against the working directory"
    )
    status = ws.cli("status", "--json", locations=False)
    assert set(json.loads(status.out)["data"]["questions"].values()) == {"up-to-date"}


def test_env_overrides_files_and_flag_overrides_env(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    (ws.root / "mksap.toml").write_text('out = "from-toml"\n', encoding="utf-8")
    monkeypatch.setenv("MKSAP_DATA", str(ws.data))
    monkeypatch.setenv("MKSAP_OUT", "from-env")
    monkeypatch.setenv("MKSAP_CACHE_DIR", str(ws.cache))
    assert ws.cli("run", "cv", "-q", locations=False).code == 0
    assert (ws.root / "from-env" / "cv").is_dir() and not (ws.root / "from-toml").exists()
    assert ws.cli("run", "en", "-q", "--out", "from-flag", locations=False).code == 0
    assert (ws.root / "from-flag" / "en").is_dir()
    assert not (ws.root / "from-env" / "en").exists()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("data = [unclosed\n", "not valid TOML"),
        ('datta = "x"\n', "datta"),
    ],
    ids=["invalid-toml", "unknown-key"],
)
def test_a_broken_project_file_is_a_clear_error(ws: Workspace, content: str, words: str) -> None:
    (ws.root / "mksap.toml").write_text(content, encoding="utf-8")
    for command in (["config"], ["run"]):
        result = ws.cli(*command, locations=False)
        assert result.code not in (0, 1)
        assert "mksap.toml" in result.err and words in result.err
        assert "Traceback" not in result.err


def test_a_bad_env_value_names_the_variable(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MKSAP_JOBS", "many")
    result = ws.cli("run")
    assert result.code not in (0, 1)
    assert "MKSAP_JOBS" in result.err and "Traceback" not in result.err


def test_config_never_prints_the_api_key(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-ant-test-0123456789-do-not-print"
    monkeypatch.setenv("ANTHROPIC_API_KEY", secret)
    text = ws.cli("config")
    as_json = ws.cli("config", "--json")
    assert secret not in text.text and secret not in as_json.text
    rows = {row["name"]: row for row in json.loads(as_json.out)["data"]}
    key = rows["plugins.anthropic.api_key"]
    assert key["value"] == "set" and key["source"] == "env ANTHROPIC_API_KEY"


def test_relative_flag_paths_resolve_against_the_working_directory(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = ws.root / "sub"
    sub.mkdir()
    monkeypatch.chdir(sub)
    result = ws.cli(
        "run", "gi", "-q", "--data", "../data", "--out", "o", "--cache-dir", "c", locations=False
    )
    assert result.code == 0, result.text
    assert (sub / "o" / "gi" / "gimcq24101" / "gimcq24101.json").is_file()
    assert Path(sub / "c" / "build").is_dir()
