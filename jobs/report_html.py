"""The run report as one self-contained HTML page (inline CSS, charts as base64 PNG).

Rendered with Jinja2 with autoescaping on: values from the data (key values, rejected rows,
column names) are escaped, so a value holding HTML shows as text and never runs.

A page leaves :data:`REMOTE_MARKER` under its title, where its links are; ``batch-score
submit`` puts a "Remote run" section there once an EMR Serverless run ended
(:func:`insert_remote_section`): the log folder, how to open the Spark UI, and the cost.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import quote

from jinja2 import Environment
from markupsafe import Markup

from batch_scoring.jobs import report_charts as charts
from batch_scoring.jobs.cost import RunCost
from batch_scoring.jobs.report_data import RunReport

TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ m.job }} run {{ m.run_date }} ({{ m.run_id }})</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.text { text-align: left; font-family: monospace; }
.failure { color: #b00; } .moderate { background: #fff3cd; } .major { background: #f8d7da; }
img { display: block; margin: 0.5em 0; max-width: 100%; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; align-items: start; }
.note { color: #555; font-style: italic; }
</style></head><body>
<h1>{{ m.job }}: run {{ m.run_date }}</h1>
<p>run id <code>{{ m.run_id }}</code> · status <b>{{ m.status }}</b> · {{ m.seconds }} s ·
started {{ m.started_at }} · finished {{ m.finished_at }}<br>
Spark {{ m.spark.version }} on {{ m.spark.master }} ({{ m.spark.application_id }}) ·
package {{ m.code.package_version }}
{% if m.model %}<br>model {{ m.model.uri }}{% if m.model.version %} version {{ m.model.version }}{% endif %}
 · sha256 <code>{{ m.model.sha256 }}</code>{% endif %}
{% if links %}<br>{{ link_list(links) }}{% endif %}
</p>
<!-- batch-scoring:remote -->

<h2>Counts</h2>
<table><tr><th>rows</th><th>this run</th>{% if previous %}<th>previous run ({{ previous.run_date }})</th><th>change</th>{% endif %}</tr>
{% for name, now, before in counts %}<tr><td>{{ name }}</td><td>{{ "{:,}".format(now) }}</td>
{% if previous %}<td>{{ "{:,}".format(before) if before is not none else "" }}</td>
<td>{{ change(now, before) }}</td>{% endif %}</tr>{% endfor %}
</table>
{% if not previous %}<p class="note">No earlier run date of this job has a succeeded manifest: no comparison or drift.</p>{% endif %}

<h2>Rejected rows</h2>
{% if not m.rows.rejected_by_reason %}<p>No row was rejected.</p>{% endif %}
{% for reason, rows in m.rows.rejected_by_reason.items() %}
<h3 class="failure">{{ reason }}: {{ "{:,}".format(rows) }} rows</h3>
{% set examples = report.reject_examples.get(reason, []) %}
{% if examples %}<table><tr>{% for c in examples[0] %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in examples %}<tr>{% for c in row %}<td class="text">{{ row[c] }}</td>{% endfor %}</tr>{% endfor %}
</table>{% endif %}
{% endfor %}

<h2>Phases</h2>
<table><tr><th>phase</th><th>seconds</th></tr>
{% for name, seconds in m.phases.items() %}<tr><td>{{ name }}</td><td>{{ "%.2f"|format(seconds) }}</td></tr>{% endfor %}
</table>
{% if cost %}<p>cost (the run up to its commit): {{ cost }}</p>{% endif %}
{{ image(images.phases, "seconds per phase") }}

{% if report.unit_sizes %}{% set u = report.unit_sizes %}
<h2>Units of work and buckets</h2>
<p>{{ "{:,}".format(u.units) }} units read{% if u.bucket_rows %} in {{ u.bucket_rows|length }} buckets
 (largest bucket {{ "{:,}".format(u.bucket_rows.values()|max) }} rows, mean {{ "{:,.0f}".format(mean(u.bucket_rows.values())) }}){% endif %}.</p>
{{ image(images.unit_sizes, "units per size") }}
<table><tr><th>largest units</th><th>rows</th></tr>
{% for key, rows in u.largest %}<tr><td class="text">{{ key_text(key) }}</td><td>{{ "{:,}".format(rows) }}</td></tr>{% endfor %}
</table>
{{ image(images.buckets, "rows per bucket") }}
{% endif %}

<h2>Output columns</h2>
{% if report.spreads %}<p>Each number's histogram (left; the previous run's shares as a line) and its spread per
{{ report.spreads[0].group_by }} over the largest groups (right; box p25 to p75, median, whiskers p10 to p90).</p>{% endif %}
{% if report.numeric %}
<table><tr><th>column</th><th>rows</th><th>nulls</th><th>mean</th><th>p1</th><th>p50</th><th>p99</th>
<th>min</th><th>max</th>{% if previous %}<th>previous mean</th><th>PSI</th><th>drift</th>{% endif %}</tr>
{% for c in report.numeric %}<tr class="{{ c.band or '' }}"><td>{{ c.name }}</td><td>{{ "{:,}".format(c.rows) }}</td>
<td>{{ "{:,}".format(c.nulls) }}</td><td>{{ num(c.mean) }}</td><td>{{ num(c.quantiles.get(0.01)) }}</td>
<td>{{ num(c.quantiles.get(0.5)) }}</td><td>{{ num(c.quantiles.get(0.99)) }}</td><td>{{ num(c.minimum) }}</td>
<td>{{ num(c.maximum) }}</td>{% if previous %}<td>{{ num(c.previous_mean) }}</td><td>{{ num(c.psi) }}</td>
<td>{{ c.band or "" }}</td>{% endif %}</tr>{% endfor %}
</table>{% endif %}
{% for c in report.numeric %}<h3>{{ c.name }}</h3>
<div class="pair">{{ image(images.columns[c.name], c.name + " distribution") }}
{% if c.name in images.spreads %}{{ image(images.spreads[c.name], c.name + " per group") }}{% endif %}</div>{% endfor %}
{% for c in report.text %}<h3>{{ c.name }}{% if c.psi is not none %} (PSI {{ num(c.psi) }}, {{ c.band }}){% endif %}</h3>
{{ image(images.columns[c.name], c.name + " values") }}{% endfor %}


{% if previous %}<h2>Drift against run {{ previous.run_date }} ({{ previous.run_id }})</h2>
<p>Population stability index per column over the previous run's deciles (text: its values):
below 0.1 stable, 0.1 to 0.25 moderate, 0.25 and above major (Siddiqi, <i>Credit Risk Scorecards</i>, 2006).</p>
{{ image(images.drift, "drift per column") }}
{% endif %}

{% if report.notes %}<h2>Notes</h2><ul>{% for n in report.notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}
</body></html>
"""

LINKS = """{% for name, url in links.items() %}{{ name }}: <a href="{{ url }}">{{ url }}</a> {% endfor %}"""

REMOTE_MARKER = "<!-- batch-scoring:remote -->"
REMOTE_SECTION = """<section id="batch-scoring-remote">
<h2>Remote run</h2>
<p>{{ r.service }} application <code>{{ r.application_id }}</code>, job run <code>{{ r.job_run_id }}</code>:
<b>{{ r.state }}</b>{% if r.execution_seconds is not none %} · {{ "{:,}".format(r.execution_seconds) }} s of execution{% endif %}<br>
{% if r.log_uri %}logs: <code>{{ r.log_uri }}</code> · {{ link_list(log_links) }}<br>{% endif %}
Spark UI: <code>{{ r.spark_ui_command }}</code> prints a link to it, valid for about an hour
(the EMR Studio and EMR Serverless consoles open it too)<br>
cost: {{ cost }}</p>
</section>
"""
_REMOTE_SECTION = re.compile(r'\n<section id="batch-scoring-remote">.*?</section>', re.DOTALL)

ENVIRONMENT = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)


def render_report(report: RunReport, links: dict[str, str] | None = None) -> str:
    """The report's HTML page (UTF-8 text).

    Args:
        report: the numbers (:func:`~batch_scoring.jobs.report_data.collect_report`).
        links: name -> URL shown under the title (a remote run's logs, its Spark UI).
    """
    manifest = report.manifest
    template = ENVIRONMENT.from_string(TEMPLATE)
    return template.render(
        m=manifest, report=report, previous=report.previous, links=links or {},
        counts=_counts(manifest, report.previous), images=_images(report), link_list=_link_list,
        cost=RunCost(**manifest["cost"]).describe() if manifest.get("cost") else None,
        image=_image_tag, change=_change, num=_number, key_text=_key_text,
        mean=lambda values: sum(values) / max(len(list(values)), 1),
    )


def insert_remote_section(html: str, remote: dict[str, Any]) -> str:
    """``html`` (a rendered report) with a "Remote run" section at :data:`REMOTE_MARKER`.

    The section shows the job run and its final state, the log folder (with a link to it in
    the S3 console), the command that makes a Spark UI link (the pre-signed link itself is
    never put in the page: it expires after an hour and opens the UI to whoever holds it) and
    the cost. Every value is escaped. A section inserted before is replaced, so inserting twice
    gives one section; a page without the marker (an older report) gets it before ``</body>``.

    Args:
        html: the report page (UTF-8 text).
        remote: the manifest's ``remote`` field
            (:func:`~batch_scoring.jobs.deploy.remote_run.remote_field`).

    Returns:
        The page with the section.
    """
    section = ENVIRONMENT.from_string(REMOTE_SECTION).render(
        r=remote, cost=_cost_text(remote.get("cost")), link_list=_link_list,
        log_links=_log_links(remote.get("log_uri"), remote.get("region")),
    )
    page = _REMOTE_SECTION.sub("", html, count=1)
    if REMOTE_MARKER in page:
        return page.replace(REMOTE_MARKER, f"{REMOTE_MARKER}\n{section}", 1)
    head, body_end, tail = page.rpartition("</body>")
    return f"{head}\n{section}{body_end}{tail}" if body_end else f"{page}\n{section}"


def _link_list(links: dict[str, str]) -> Markup:
    """``name: <a href="url">url</a>`` per link, escaped (the title's links and the remote section's)."""
    return Markup(ENVIRONMENT.from_string(LINKS).render(links=links))


def _log_links(log_uri: str | None, region: str | None) -> dict[str, str]:
    """The S3 console's page of the log folder ``s3://bucket/prefix/``, when there is one."""
    if not log_uri or not log_uri.startswith("s3://"):
        return {}
    bucket, _, prefix = log_uri.removeprefix("s3://").partition("/")
    region_query = f"region={quote(region)}&" if region else ""
    return {"S3 console": f"https://s3.console.aws.amazon.com/s3/buckets/{quote(bucket)}?{region_query}"
                          f"prefix={quote(prefix)}"}


def _cost_text(cost: dict[str, Any] | None) -> str:
    return RunCost(**cost).describe() if cost else "unknown (GetJobRun did not answer)"


def _counts(manifest: dict[str, Any], previous: dict[str, Any] | None) -> list[tuple[str, int, int | None]]:
    rows, before = manifest.get("rows") or {}, (previous or {}).get("rows") or {}
    names = [("in", "read"), ("out", "out"), ("rejected", "rejected"), ("units", "units")]
    return [(label, int(rows[key]), before.get(key)) for key, label in names if rows.get(key) is not None]


def _images(report: RunReport) -> dict[str, Any]:
    columns = {c.name: charts.histogram_chart(c) for c in report.numeric}
    columns.update({c.name: charts.categories_chart(c) for c in report.text})
    sizes = report.unit_sizes
    return {
        "phases": charts.phases_chart(report.manifest.get("phases") or {}),
        "columns": columns,
        "spreads": {s.column: charts.spread_chart(s) for s in report.spreads},
        "drift": charts.drift_chart({name: d["psi"] for name, d in report.drift().items()}),
        "unit_sizes": charts.unit_size_chart(sizes) if sizes else None,
        "buckets": charts.bucket_chart(sizes.bucket_rows) if sizes else None,
    }


def _image_tag(png: bytes | None, alt: str):
    from markupsafe import Markup, escape

    if not png:
        return Markup("")
    data = base64.b64encode(png).decode("ascii")
    return Markup(f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">')


def _change(now: int, before: int | None) -> str:
    if not before:
        return ""
    return f"{now - before:+,} ({(now - before) / before:+.1%})"


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"


def _key_text(key: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in key.items())
