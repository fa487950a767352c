"""review: one static, self-contained HTML page to read the statements (no server, no network).

Every question with its statements, cloze candidates highlighted, extra field, source kind and
validation findings; a system filter and a search box in plain JS; readable on a phone. All text
from the data is HTML-escaped.
"""

from __future__ import annotations

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
  var questions = Array.prototype.slice.call(document.querySelectorAll("article.question"));
  var expected = parseInt(document.querySelector("main").getAttribute("data-statements"), 10);
  function apply() {
    var words = search.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var wanted = system.value;
    var shown = 0;
    questions.forEach(function (q) {
      var inSystem = !wanted || q.getAttribute("data-system") === wanted;
      var visible = 0;
      q.querySelectorAll("li.statement").forEach(function (s) {
        var hay = (q.getAttribute("data-id") + " " + s.textContent).toLowerCase();
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


def statement_html(s: ExportStatement) -> str:
    badges = [f'<span class="badge">{escape(s.source.replace("_", " "))}</span>']
    if s.table_source:
        badges.append(f'<span class="badge">{escape(s.table_source)}</span>')
    if s.flagged:
        badges.append('<span class="badge flag">flagged</span>')
    lines = [
        f'<li class="statement{" flagged" if s.flagged else ""}" data-source="{escape(s.source)}">',
        f'<p class="text">{marked(s)}</p>',
    ]
    if s.extra_field:
        lines.append(f'<p class="extra">{escape(s.extra_field)}</p>')
    lines.append(
        f'<p class="meta">{"".join(badges)}<span class="sid">{escape(s.statement_id)}</span></p>'
    )
    if s.findings:
        items = "".join(
            f'<li class="{escape(f.severity)}">'
            f"{escape(f.severity)}: {escape(f.code)}: {escape(f.message)}</li>"
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
    for q in questions:
        keep, left_out = selected(q, options)
        flagged += left_out
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
</div>
<p class="summary"><span id="count">?</span> of {total} statements shown</p>
</header>
<main data-statements="{total}">
{chr(10).join(articles)}
</main>
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
    version = "1"
    suffix = ".html"
    default_file = "review.html"
    options_model = ExportOptions

    def export(
        self, questions: list[ExportQuestion], options: ExportOptions, path: Path
    ) -> ExportWritten:
        text, total, flagged = page(questions, options)
        write_text(path, text)
        return ExportWritten(items=total, skipped={"flagged": flagged})
