"""`mksap plugins` and the plugin registry, end to end: first-party plugins come from the
installed entry points, broken plugins are listed with their error, third-party modules named
in MKSAP_PLUGINS join the task graph through the stage interface alone."""

from __future__ import annotations

import json
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.conftest import STAGES, Workspace, example_qids, planned_tasks, summary_line

N = len(example_qids())


def plugin_rows(text: str) -> list[list[str]]:
    return [
        line.split()
        for line in text.splitlines()
        if line.split()[:1] in (["stage"], ["provider"], ["exporter"])
    ]


def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> str:
    folder = tmp_path / "plugin_modules"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    monkeypatch.syspath_prepend(str(folder))
    return name


def test_first_party_entry_points_resolve_in_the_installed_package() -> None:
    from mksap.contracts.hookspecs import HOOKS

    eps = {ep.name: ep for ep in entry_points(group="mksap")}
    assert {"stages", "providers"} <= set(eps)
    for ep in eps.values():
        if ep.dist is not None and ep.dist.name == "mksap":
            module = ep.load()
            assert any(callable(getattr(module, h, None)) for h in HOOKS), ep
    # every other first-party entry point (e.g. doit's DB backend) resolves too
    for group in ("console_scripts", "doit.BACKEND"):
        for ep in entry_points(group=group):
            if ep.dist is not None and ep.dist.name == "mksap":
                assert ep.load() is not None, ep


def test_plugins_lists_stages_and_providers_with_their_package(ws: Workspace) -> None:
    result = ws.cli("plugins")
    assert result.code == 0, result.text
    rows = plugin_rows(result.out)
    stages = {r[1]: r for r in rows if r[0] == "stage"}
    assert set(STAGES) <= set(stages)
    assert all(stages[s][2] == "mksap" for s in STAGES)
    providers = {r[1]: r for r in rows if r[0] == "provider"}
    assert "offline" in providers and providers["offline"][2] == "mksap"
    assert "FAILED" not in result.out

    data = json.loads(ws.cli("plugins", "--json").out)
    assert data["kind"] == "plugins"
    names = {(p["kind"], p["name"], p["package"]) for p in data["data"]["plugins"]}
    assert {("stage", s, "mksap") for s in STAGES} <= names
    assert ("provider", "offline", "mksap") in names
    assert data["data"]["failed"] == []


def test_a_plugin_that_fails_to_import_is_listed_with_its_error(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = write_module(
        tmp_path, monkeypatch, "mksap_test_broken_plugin", 'raise RuntimeError("boom at import")\n'
    )
    monkeypatch.setenv("MKSAP_PLUGINS", name)

    result = ws.cli("plugins")
    assert result.code == 0, result.text
    failed = [line for line in result.out.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1
    assert name in failed[0] and "RuntimeError" in failed[0] and "boom at import" in failed[0]
    assert {r[1] for r in plugin_rows(result.out) if r[0] == "stage"} >= set(
        STAGES
    )  # the rest still loads

    data = json.loads(ws.cli("plugins", "--json").out)["data"]
    assert [f["source"] for f in data["failed"]] == [name]
    assert "boom at import" in data["failed"][0]["error"]

    # a build still runs on the good plugins, and says which one it could not load
    run = ws.cli("run")
    assert run.code == 0, run.text
    assert summary_line(run.err).startswith(f"{N} built")
    assert name in run.err and "boom at import" in run.err


def test_a_misspelt_hook_is_reported_not_ignored(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = write_module(
        tmp_path,
        monkeypatch,
        "mksap_test_misspelt_plugin",
        """
        def register_stage(register):
            pass
        """,
    )
    monkeypatch.setenv("MKSAP_PLUGINS", name)
    result = ws.cli("plugins")
    failed = [line for line in result.out.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and "register_stage" in failed[0]


def test_a_third_party_stage_joins_the_graph(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = write_module(
        tmp_path,
        monkeypatch,
        "mksap_test_wordcount_plugin",
        """
        from mksap.contracts.stage import Stage


        class WordCount(Stage):
            \"\"\"Counts the words of each question's critique (a test plugin).\"\"\"

            name = "wordcount"
            version = "1"
            needs = ("parse",)

            def run(self, job):
                parsed = job.artifacts["parse"].read_text(encoding="utf-8")
                return {"qid": job.question.qid, "chars": len(parsed)}


        def register_stages(register):
            register(WordCount)
        """,
    )
    monkeypatch.setenv("MKSAP_PLUGINS", name)

    listed = {r[1]: r for r in plugin_rows(ws.cli("plugins").out) if r[0] == "stage"}
    assert listed["wordcount"][2] == "MKSAP_PLUGINS"

    dry = planned_tasks(ws.cli("run", "--dry-run").out)
    assert len(dry) == N * (len(STAGES) + 1)
    assert all(f"wordcount:{q}" in dry for _, q in example_qids())

    result = ws.cli("run", "-q")
    assert result.code == 0, result.text
    for _, qid in example_qids():
        artifact = ws.artifact(qid, "wordcount")
        assert json.loads(artifact.read_text(encoding="utf-8"))["qid"] == qid
