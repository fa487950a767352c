"""The review page: valid, balanced HTML holding every exported statement, self-contained, and,
loaded in headless Chromium (Debian's `chromium`, installed by `.ci/run`), its script runs,
counts every statement and logs nothing to the console; its triage controls, clicked by a
script added to the page, produce the decisions file that `mksap decisions import` reads, and a
page exported after the import starts from those decisions. Without chromium those tests fail
when `CI` is set (CI must prove the page works) and are skipped, with the reason, otherwise."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mksap.contracts.exporter import text_digest
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
CHROMIUM = "/usr/bin/chromium"  # Debian's package; any `chromium` on PATH is used first
STATEMENT = re.compile(r'<li class="statement[ "]')


class Structure(HTMLParser):
    """Checks that every non-void tag is closed in order; collects each statement's highlighted
    candidates, keyed by its stable id, and every URL."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.urls: list[str] = []
        #: one entry per <li class="statement">, in page order: [qid/statement id, marks]
        self.found: list[tuple[list[str], list[str]]] = []
        self._question = ""  # data-id of the open <article>
        self._statement: int | None = None  # stack depth of the open statement <li>
        self._text: list[str] | None = None  # text of the open <mark> or <span class="sid">

    @property
    def statements(self) -> int:
        return len(self.found)

    def marks(self) -> dict[str, list[str]]:
        """qid/statement id -> the texts highlighted in that statement."""
        return {"".join(sid): marks for sid, marks in self.found}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        classes = (values.get("class") or "").split()
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]
        if tag == "article":
            self._question = values.get("data-id") or ""
        if tag == "li" and "statement" in classes:
            if self._statement is not None:
                self.problems.append(f"a statement inside a statement at {self.getpos()}")
            self._statement = len(self.stack)
            self.found.append(([f"{self._question}/"], []))
        if tag == "mark" or (tag == "span" and "sid" in classes):
            if self._statement is None:
                self.problems.append(f"<{tag}> outside a statement at {self.getpos()}")
            self._text = []
        if tag not in VOID:
            self.stack.append(tag)

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(
                f"</{tag}> closes <{self.stack[-1] if self.stack else None}> at {self.getpos()}"
            )
            return
        self.stack.pop()
        if tag in ("mark", "span") and self._text is not None and self._statement is not None:
            sid, marks = self.found[-1]
            (marks if tag == "mark" else sid).append("".join(self._text))
            self._text = None
        if tag == "li" and self._statement == len(self.stack):
            self._statement = None


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
    # per statement: at least one highlighted candidate, and only its own candidates
    marks = parser.marks()
    expected = accepted(built)
    assert marks.keys() == expected.keys()
    unmarked = sorted(sid for sid, found in marks.items() if not found)
    assert unmarked == [], f"statements without a highlighted candidate: {unmarked}"
    strays = {
        sid: [m for m in found if m not in expected[sid]["cloze_candidates"]] for sid, found in marks.items()
    }
    assert {sid: m for sid, m in strays.items() if m} == {}, "highlights that are no candidate of their statement"
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


def run_chromium(chromium: str, page: Path, profile: Path, *extra: str) -> tuple[str, str]:
    argv = [
        chromium,
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
        *extra,
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


def find_chromium() -> str:
    """Chromium's path. Missing: a failure under CI (CI must prove the page works), a skip
    with the reason elsewhere."""
    path = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(
                "CI is set but chromium is not installed: the review page must be proven in headless "
                "Chromium (.ci/run installs Debian's chromium: apt-get install chromium)"
            )
        pytest.skip("chromium not installed (apt-get install chromium; under CI this test fails instead)")
    return path


def test_page_renders_in_headless_chromium_without_console_errors(
    built: Workspace, page: Path, tmp_path: Path
) -> None:
    chromium = find_chromium()
    expected = len(accepted(built))
    dom, stderr = run_chromium(chromium, page, tmp_path / "profile")
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
    _, stderr = run_chromium(chromium, broken, tmp_path / "profile2")
    assert any("mksap review: the page holds" in line for line in console_lines(stderr, broken)), (
        stderr[-2000:]
    )


#: Added after the page's own script: plays a reader who rejects one statement, edits another
#: and saves. The download is caught where it leaves the page (the Blob handed to
#: URL.createObjectURL, the <a download> clicked), and the Blob's own text is put in the DOM.
READER = """<script>
(function () {
  var blobs = [];
  URL.createObjectURL = function (blob) { blobs.push(blob); return "blob:caught"; };
  HTMLAnchorElement.prototype.click = function () {
    document.body.setAttribute("data-download", this.download + " " + this.getAttribute("href"));
  };
  function item(sid) { return document.querySelector('li.statement[data-sid="' + sid + '"]'); }
  item(REJECT).querySelector('button[data-action="reject"]').click();
  var edited = item(EDIT);
  edited.querySelector('button[data-action="edit"]').click();
  var box = edited.querySelector("textarea.edit-text");
  box.value = TEXT;
  box.dispatchEvent(new Event("input", { bubbles: true }));
  document.getElementById("save").click();
  blobs[0].text().then(function (text) {
    var saved = document.createElement("pre");
    saved.id = "saved";
    saved.setAttribute("data-type", blobs[0].type);
    saved.textContent = text;
    document.body.appendChild(saved);
  });
})();
</script>
</body>"""


def pre(dom: str, pre_id: str) -> str:
    found = re.search(rf'<pre id="{pre_id}"[^>]*>(.*?)</pre>', dom, re.DOTALL)
    assert found, f"no <pre id={pre_id}> in the page"
    return unescape(found.group(1))


def test_triage_controls_save_decisions_that_import_and_come_back(
    built: Workspace, page: Path, tmp_path: Path
) -> None:
    chromium = find_chromium()
    statements = accepted(built)
    reject, edit = sorted(statements)[:2]
    text = "An edited statement, with \"quotes\" & <angle> brackets."
    reader = READER.replace("REJECT", json.dumps(reject)).replace("EDIT", json.dumps(edit))
    scripted = tmp_path / "scripted.html"
    scripted.write_text(
        page.read_text(encoding="utf-8").replace("</body>", reader.replace("TEXT", json.dumps(text))),
        encoding="utf-8",
    )
    dom, stderr = run_chromium(chromium, scripted, tmp_path / "profile", "--virtual-time-budget=5000")
    assert console_lines(stderr, scripted) == []
    assert 'data-download="mksap-decisions.json blob:caught"' in dom  # an <a download> of the Blob
    saved = pre(dom, "saved")
    assert saved == pre(dom, "decisions-json")  # the file is what the page shows
    data = json.loads(saved)
    assert (data["mksap"], data["kind"]) == (1, "decisions")
    assert set(data["decisions"]) == {reject, edit}
    assert data["decisions"][reject]["action"] == "reject" and data["decisions"][reject]["text"] is None
    assert data["decisions"][edit]["action"] == "edit" and data["decisions"][edit]["text"] == text
    for sid in (reject, edit):
        assert data["decisions"][sid]["source_digest"] == text_digest(statements[sid]["statement"])
        assert data["decisions"][sid]["at"]
    assert '<span id="decided">2</span>' in dom

    # the saved file imports, the export honours it, and the next page starts from it
    file = tmp_path / "mksap-decisions.json"
    file.write_text(saved, encoding="utf-8")
    result = built.cli("decisions", "import", str(file), *built.location_flags(), locations=False)
    assert result.code == 0 and "(0 accept, 1 reject, 1 edit)" in result.out, result.text
    result = export(built, "review", "-o", str(page))
    assert result.code == 0 and "wrote" in result.out, result.text  # a new decision: not up to date
    dom, stderr = run_chromium(chromium, page, tmp_path / "profile2")
    assert console_lines(stderr, page) == []
    assert json.loads(pre(dom, "decisions-json"))["decisions"] == data["decisions"]
    assert re.search(rf'<li class="statement[^"]*decided-reject[^"]*"[^>]*data-sid="{re.escape(reject)}"', dom)
    assert re.search(rf'<li class="statement[^"]*decided-edit[^"]*"[^>]*data-sid="{re.escape(edit)}"', dom)
    assert '<span id="decided">2</span>' in dom
