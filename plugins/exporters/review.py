"""review: one static, self-contained HTML page to read the statements (no server, no network).

Every question with its statements, cloze candidates highlighted, extra field, source kind and
validation findings; a system filter and a search box in plain JS; readable on a phone. All text
from the data is HTML-escaped.

A statement of a table shared by several questions is shown once, under the question that keeps
its note, with the others named ("also in ..."); a decision on it applies to every copy.

Triage: each statement can be accepted, rejected or edited; "Save decisions" downloads them as
`mksap-decisions.json` (a Blob, no server) for `mksap decisions import`. The page starts from the
stored decisions (`reviews = True`: the core hands every statement over with its decision) and
shows those that need a new look. The decisions file as it stands is always in
`<pre id="decisions-json">`.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from mksap.atomic import write_text
from mksap.contracts.exporter import (
    Exporter,
    ExportOptions,
    ExportQuestion,
    ExportStatement,
    ExportWritten,
    selected,
)
from mksap.contracts.statements import candidate_spans

CSS = """
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif;
       color: #1a1a1a; background: #f6f6f4; }
header { position: sticky; top: 0; z-index: 1; background: #fff; border-bottom: 1px solid #ddd;
         padding: .6rem 1rem; }
h1 { font-size: 1.15rem; margin: 0 0 .4rem; }
.controls { display: flex; flex-wrap: wrap; gap: .5rem; }
.controls select, .controls input { font: inherit; padding: .35rem .5rem; border: 1px solid #bbb;
                                    border-radius: 6px; }
.controls input { flex: 1 1 12rem; min-width: 0; }
.summary { margin: .4rem 0 0; font-size: .85rem; color: #555; }
main { max-width: 52rem; margin: 0 auto; padding: .5rem 1rem 3rem; }
.question { background: #fff; border: 1px solid #e2e2e2; border-radius: 10px; padding: .8rem 1rem;
            margin: 1rem 0; }
.question h2 { font-size: 1rem; margin: 0; overflow-wrap: anywhere; }
.question h2 small { font-weight: normal; color: #666; }
.objective { margin: .2rem 0 .5rem; color: #444; font-size: .92rem; }
ol.statements { margin: 0; padding-left: 1.3rem; }
li.statement { margin: .55rem 0; overflow-wrap: anywhere; }
li.statement.flagged { background: #fff4f2; }
mark { background: #ffe58a; padding: 0 .1em; border-radius: 3px; }
.meta { font-size: .78rem; color: #666; }
.badge { display: inline-block; border: 1px solid #ccc; border-radius: 999px; padding: 0 .45em;
         margin-right: .3em; }
.badge.flag { border-color: #d33; color: #b00; }
.extra { font-size: .9rem; color: #333; margin: .15rem 0; }
ul.findings { margin: .15rem 0; padding-left: 1.1rem; font-size: .82rem; }
li.error { color: #b00; }
li.warning { color: #8a6100; }
.hidden { display: none; }
.triage { display: flex; flex-wrap: wrap; gap: .3rem; margin: .2rem 0; }
button { font: inherit; font-size: .8rem; padding: .15rem .6rem; border: 1px solid #bbb;
         border-radius: 6px; background: #fafafa; cursor: pointer; }
header button { font-size: .9rem; }
li.decided-accept button[data-action="accept"] { background: #dff3df; border-color: #3a3; }
li.decided-reject button[data-action="reject"] { background: #fde0dc; border-color: #d33; }
li.decided-edit button[data-action="edit"] { background: #e0ecfd; border-color: #36c; }
li.decided-reject p.text { text-decoration: line-through; color: #777; }
textarea.edit-text { width: 100%; font: inherit; font-size: .92rem; min-height: 4.5em; }
.badge.stale { border-color: #c80; color: #8a6100; }
@media (max-width: 600px) {
  body { font-size: 15px; }
  main { padding: .25rem .5rem 2rem; }
  .question { padding: .6rem .7rem; }
}
"""

JS = """
(function () {
  "use strict";
  var search = document.getElementById("search");
  var system = document.getElementById("system");
  var count = document.getElementById("count");
  var main = document.querySelector("main");
  var questions = Array.prototype.slice.call(document.querySelectorAll("article.question"));
  var expected = parseInt(main.getAttribute("data-statements"), 10);
  var PARTS = ".text, .extra, .meta, .findings";
  function searchable(s) {
    return Array.prototype.map.call(s.querySelectorAll(PARTS), function (e) { return e.textContent; }).join(" ");
  }
  function apply() {
    var words = search.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var wanted = system.value;
    var shown = 0;
    questions.forEach(function (q) {
      var inSystem = !wanted || q.getAttribute("data-system") === wanted;
      var visible = 0;
      q.querySelectorAll("li.statement").forEach(function (s) {
        var hay = (q.getAttribute("data-id") + " " + searchable(s)).toLowerCase();
        var ok = inSystem && words.every(function (w) { return hay.indexOf(w) >= 0; });
        s.classList.toggle("hidden", !ok);
        if (ok) { visible += 1; }
      });
      q.classList.toggle("hidden", visible === 0);
      shown += visible;
    });
    count.textContent = String(shown);
  }
  search.addEventListener("input", apply);
  system.addEventListener("change", apply);
  apply();

  // triage: stable id -> {action, text, source_digest, at}, starting from the stored decisions
  var decisions = JSON.parse(document.getElementById("stored-decisions").textContent);
  var output = document.getElementById("decisions-json");
  var decided = document.getElementById("decided");
  var items = Array.prototype.slice.call(document.querySelectorAll("li.statement"));
  function fileText() {
    var sorted = {};
    Object.keys(decisions).sort().forEach(function (k) { sorted[k] = decisions[k]; });
    return JSON.stringify({ mksap: 1, kind: "decisions", decisions: sorted }, null, 1) + "\\n";
  }
  function show() {
    items.forEach(function (li) {
      var d = decisions[li.getAttribute("data-sid")];
      ["accept", "reject", "edit"].forEach(function (a) {
        li.classList.toggle("decided-" + a, Boolean(d) && d.action === a);
      });
    });
    decided.textContent = String(Object.keys(decisions).length);
    output.textContent = fileText();
  }
  function decide(li, action, text) {
    var sid = li.getAttribute("data-sid");
    var was = decisions[sid];
    if (action !== "edit" && was && was.action === action) {
      delete decisions[sid];  // a second click undoes it
    } else if (action === "edit" && (!text.trim() || text === li.getAttribute("data-text"))) {
      if (was && was.action === "edit") { delete decisions[sid]; }
    } else {
      decisions[sid] = {
        action: action,
        text: action === "edit" ? text : null,
        source_digest: li.getAttribute("data-digest"),
        at: new Date().toISOString()
      };
    }
    show();
  }
  main.addEventListener("click", function (e) {
    var button = e.target.closest("button[data-action]");
    if (!button) { return; }
    var li = button.closest("li.statement");
    var action = button.getAttribute("data-action");
    if (action === "edit") {
      var box = li.querySelector("textarea.edit-text");
      box.classList.remove("hidden");
      box.focus();
      decide(li, "edit", box.value);
    } else {
      decide(li, action, null);
    }
  });
  main.addEventListener("input", function (e) {
    if (e.target.matches("textarea.edit-text")) {
      decide(e.target.closest("li.statement"), "edit", e.target.value);
    }
  });
  document.getElementById("save").addEventListener("click", function () {
    var text = fileText();
    output.textContent = text;
    var url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
    var link = document.createElement("a");
    link.href = url;
    link.download = "mksap-decisions.json";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
  });
  show();
  var total = document.querySelectorAll("li.statement").length;
  if (total !== expected) {
    console.error("mksap review: the page holds " + total + " statements, expected " + expected);
  }
})();
"""


def marked(s: ExportStatement) -> str:
    """The statement, escaped, with each placed cloze candidate in <mark>."""
    parts: list[str] = []
    pos = 0
    for start, end, _ in candidate_spans(s.statement, s.cloze_candidates):
        parts += [
            escape(s.statement[pos:start]),
            "<mark>",
            escape(s.statement[start:end]),
            "</mark>",
        ]
        pos = end
    parts.append(escape(s.statement[pos:]))
    return "".join(parts)


def stored_decisions(statements: list[ExportStatement]) -> dict[str, dict[str, str | None]]:
    """The page's starting decisions: the stored ones still current (the others need a new look)."""
    return {
        s.stable_id: {
            "action": s.decision.action,
            "text": s.decision.text,
            "source_digest": s.source_digest,
            "at": s.decision.at,
        }
        for s in statements
        if s.decision is not None and s.decision.current
    }


def script_json(data: object) -> str:
    """JSON safe inside a <script> element."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def triage_html(s: ExportStatement) -> str:
    """The accept / reject / edit controls, and the edit box (open when the stored decision is an edit)."""
    d = s.decision if s.decision is not None and s.decision.current else None
    edited = d is not None and d.action == "edit" and d.text is not None
    buttons = "".join(
        f'<button type="button" data-action="{a}">{a.capitalize()}</button>' for a in ("accept", "reject", "edit")
    )
    box = escape(d.text if edited and d.text is not None else s.statement)
    return (
        f'<div class="triage">{buttons}</div>\n'
        f'<textarea class="edit-text{"" if edited else " hidden"}" aria-label="Edited statement">{box}</textarea>'
    )


def statement_html(s: ExportStatement) -> str:
    badges = [f'<span class="badge">{escape(s.source.replace("_", " "))}</span>']
    if s.table_source:
        badges.append(f'<span class="badge">{escape(s.table_source)}</span>')
    if s.copies:  # a shared table's statement: shown (and decided) once, for every question
        also = ", ".join(sorted({c.question_id for c in s.copies}))
        badges.append(f'<span class="badge shared">also in {escape(also)}</span>')
    if s.flagged:
        badges.append('<span class="badge flag">flagged</span>')
    if s.decision is not None and not s.decision.current:
        badges.append(f'<span class="badge stale">needs a new look ({escape(s.decision.action)}ed before)</span>')
    decided = f" decided-{s.decision.action}" if s.decision is not None and s.decision.current else ""
    lines = [
        f'<li class="statement{" flagged" if s.flagged else ""}{decided}" data-source="{escape(s.source)}" '
        f'data-sid="{escape(s.stable_id)}" data-digest="{escape(s.source_digest)}" data-text="{escape(s.statement)}">',
        f'<p class="text">{marked(s)}</p>',
    ]
    if s.extra_field:
        lines.append(f'<p class="extra">{escape(s.extra_field)}</p>')
    lines.append(f'<p class="meta">{"".join(badges)}<span class="sid">{escape(s.statement_id)}</span></p>')
    lines.append(triage_html(s))
    if s.findings:
        items = "".join(
            f'<li class="{escape(f.severity)}">{escape(f.severity)}: {escape(f.code)}: {escape(f.message)}</li>'
            for f in s.findings
        )
        lines.append(f'<ul class="findings">{items}</ul>')
    lines.append("</li>")
    return "\n".join(lines)


def question_html(q: ExportQuestion, statements: list[ExportStatement]) -> str:
    title = f" <small>{escape(q.category_name)}</small>" if q.category_name else ""
    objective = f'<p class="objective">{escape(q.objective)}</p>' if q.objective else ""
    body = "\n".join(statement_html(s) for s in statements)
    return (
        f'<article class="question" id="q-{escape(q.question_id)}" '
        f'data-id="{escape(q.question_id)}" '
        f'data-system="{escape(q.system)}">\n<h2>{escape(q.question_id)}{title}</h2>\n{objective}\n'
        f'<ol class="statements">\n{body}\n</ol>\n</article>'
    )


def page(questions: list[ExportQuestion], options: ExportOptions) -> tuple[str, int, int]:
    """The page, the number of statements on it and how many flagged ones were left out."""
    articles: list[str] = []
    total = flagged = 0
    stored: dict[str, dict[str, str | None]] = {}
    for q in questions:
        keep, left_out = selected(q, options)
        flagged += left_out
        stored |= stored_decisions(keep)
        if keep:
            articles.append(question_html(q, keep))
            total += len(keep)
    systems = sorted({q.system for q in questions})
    choices = "".join(f'<option value="{escape(s)}">{escape(s)}</option>' for s in systems)
    html_text = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mksap review</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>mksap review</h1>
<div class="controls">
<select id="system" aria-label="System"><option value="">All systems</option>{choices}</select>
<input id="search" type="search" placeholder="Search statements, ids, findings" aria-label="Search">
<button type="button" id="save">Save decisions</button>
</div>
<p class="summary"><span id="count">?</span> of {total} statements shown, <span id="decided">?</span> decided
(save them, then: mksap decisions import mksap-decisions.json)</p>
</header>
<main data-statements="{total}">
{chr(10).join(articles)}
</main>
<pre id="decisions-json" hidden></pre>
<script type="application/json" id="stored-decisions">{script_json(stored)}</script>
<script>{JS}</script>
</body>
</html>
"""
    return html_text, total, flagged


class ReviewExporter(Exporter[ExportOptions]):
    """A static HTML page to read the statements: system filter, search, findings; no server.

    Also `mksap review` (this plugin registers that command). Example: mksap review cv -o review.html
    """

    name = "review"
    version = "3"  # 3: a shared table's statement once, with the other questions that use it
    reviews = True
    suffix = ".html"
    default_file = "review.html"
    options_model = ExportOptions

    def export(self, questions: list[ExportQuestion], options: ExportOptions, path: Path) -> ExportWritten:
        text, total, flagged = page(questions, options)
        write_text(path, text)
        return ExportWritten(items=total, skipped={"flagged": flagged})
