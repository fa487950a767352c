"""The review page: valid, balanced HTML holding every exported statement, self-contained, and,
loaded in headless Chromium (Debian's `chromium`, installed by `.ci/run`), its script runs,
counts every statement and logs nothing to the console."""

from __future__ import annotations

import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.test_export import accepted, export

VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}
CHROMIUM = "/usr/bin/chromium"
STATEMENT = re.compile(r'<li class="statement[ "]')


class Structure(HTMLParser):
    """Checks that every non-void tag is closed in order; counts statements and URLs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.statements = 0
        self.urls: list[str] = []
        self.marks = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]
        if tag == "li" and "statement" in (values.get("class") or "").split():
            self.statements += 1
        self.marks += tag == "mark"
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(
                f"</{tag}> closes <{self.stack[-1] if self.stack else None}> at {self.getpos()}"
            )
            return
        self.stack.pop()


@pytest.fixture
def page(built: Workspace, tmp_path: Path) -> Path:
    path = tmp_path / "review.html"
    result = export(built, "review", "-o", str(path))
    assert result.code == 0, result.text
    assert f"{len(accepted(built))} statements from 15 questions" in result.out
    return path


def test_page_is_balanced_self_contained_html_with_every_statement(
    built: Workspace, page: Path
) -> None:
    text = page.read_text(encoding="utf-8")
    parser = Structure()
    parser.feed(text)
    parser.close()
    assert parser.problems == [] and parser.stack == []
    assert (
        parser.statements
        == len(accepted(built))
        == int(re.search(r'data-statements="(\d+)"', text).group(1))
    )
    assert (
        parser.marks >= parser.statements
    )  # every statement has at least one highlighted candidate
    assert parser.urls == [] and "http://" not in text and "https://" not in text
    assert '<meta name="viewport"' in text and "@media" in text
    assert '<select id="system"' in text and '<input id="search"' in text


def test_data_is_escaped(built: Workspace, tmp_path: Path) -> None:
    doc_path = built.output_json("cvmcq24101")
    doc = json.loads(doc_path.read_text(encoding="utf-8"))
    doc["true_statements"]["from_critique"][0]["extra_field"] = (
        '<script>alert(1)</script> & "quoted"'
    )
    doc_path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    path = tmp_path / "r.html"
    assert export(built, "review", "cvmcq24101", "-o", str(path)).code == 0
    text = path.read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot;" in text


def run_chromium(page: Path, profile: Path) -> tuple[str, str]:
    argv = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--dump-dom",
        page.as_uri(),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, proc.stderr


def console_lines(stderr: str, page: Path) -> list[str]:
    """Console messages (log, error, uncaught exceptions) that the page produced."""
    return [
        line
        for line in stderr.splitlines()
        if ("CONSOLE" in line or "Uncaught" in line) and page.name in line
    ]


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"{CHROMIUM} not installed (.ci/run installs Debian's chromium)",
)
def test_page_renders_in_headless_chromium_without_console_errors(
    built: Workspace, page: Path, tmp_path: Path
) -> None:
    expected = len(accepted(built))
    dom, stderr = run_chromium(page, tmp_path / "profile")
    assert f'<span id="count">{expected}</span>' in dom  # written by the page's script: JS ran
    assert len(STATEMENT.findall(dom)) == expected
    assert console_lines(stderr, page) == []

    # The check above can fail: a page whose self-check fails logs a console error, and we see it.
    broken = tmp_path / "broken.html"
    broken.write_text(
        page.read_text(encoding="utf-8").replace(
            f'data-statements="{expected}"', 'data-statements="1"'
        )
    )
    _, stderr = run_chromium(broken, tmp_path / "profile2")
    assert any("mksap review: the page holds" in line for line in console_lines(stderr, broken)), (
        stderr[-2000:]
    )
