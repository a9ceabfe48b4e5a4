"""The report's page: one self-contained index.html (inline CSS and SVG, no scripts, no external links) from
``eval/report.py``'s report. Every text taken from an input goes through ``html.escape``."""

from __future__ import annotations

import html
import re
from typing import Any

SHARE = re.compile(r"rate|accuracy|f1|pass\^|ndcg|recall|mrr|^hygiene\.")
CARDS = {"cases": ("pass_rate",), "dialogues": ("goal_accuracy", "grounded_rate"), "simulate": ("hit_rate",),
         "intents": ("accuracy", "macro_f1"), "logs": ("turns", "no_match_rate", "tool_error_rate")}  # fmt: skip
Number = int | float


def is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def flatten(tree: dict, prefix: str = "") -> dict[str, Number]:
    """{"cases.pass_rate": 0.8, …}: every numeric leaf by its dotted path."""
    out: dict[str, Number] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= flatten(value, path + ".")
        elif is_num(value):
            out[path] = value
    return out


# --- SVG and HTML helpers --------------------------------------------------------------------------------------
def e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _unit(path: str) -> str:
    leaf = path.rsplit(".", 1)[-1]
    if path.startswith("latency.") or "_ms" in leaf or "ms_" in leaf:
        return "ms"
    return "share" if SHARE.search(path) else ""


def fmt(path: str, value: Any) -> str:
    """A figure as text: shares as percentages, times in ms, counts as integers."""
    if not is_num(value):
        return "–"
    unit = _unit(path)
    if unit == "ms":
        return f"{value:,.0f} ms"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.1%}" if unit == "share" else f"{value:,.3g}"


def fmt_delta(path: str, delta: Number) -> str:
    """A change as text: percentage points for shares, signed ms or numbers otherwise."""
    unit = _unit(path)
    if unit == "ms":
        return f"{delta:+,.0f} ms"
    if unit == "share" and not isinstance(delta, int):
        return f"{delta * 100:+.1f} pp"
    return f"{delta:+,}" if isinstance(delta, int) else f"{delta:+,.3g}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A horizontally scrolling table; headers and cells are HTML already."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def svg_bars(rows: list[tuple[str, float, str, float | None]], scale: float = 1.0) -> str:
    """Horizontal bars: (label, value, note, optional second value drawn as a thin dark bar), 0..scale."""
    width, left, bar, step = 520, 130, 240, 30
    parts = []
    for i, (label, value, note, second) in enumerate(rows):
        y = 8 + i * step
        parts.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{e(label[:18])}</text>'
                     f'<rect x="{left}" y="{y}" width="{bar}" height="20" fill="#eef1f5"/>'
                     f'<rect x="{left}" y="{y}" width="{bar * min(value / scale, 1):.1f}" height="20" fill="#4f7cff"/>'
                     f'<text x="{left + bar + 8}" y="{y + 15}">{e(note)}</text>')  # fmt: skip
        if second is not None:
            parts.append(f'<rect x="{left}" y="{y + 14}" width="{bar * min(second / scale, 1):.1f}" height="6" '
                         f'fill="#1c2f73"/>')  # fmt: skip
    height = 16 + len(rows) * step
    return f'<svg viewBox="0 0 {width} {height}" role="img" class="chart">{"".join(parts)}</svg>'


def svg_histogram(edges: list[float], counts: list[int], marks: dict[str, float]) -> str:
    """Vertical bars of counts per bin, with a dashed line and a label at each mark (e.g. p50, p95)."""
    width, height, left, bottom, top = 520, 200, 40, 30, 20
    span, tallest = (edges[-1] - edges[0]) or 1.0, max(counts) or 1
    plot_w, plot_h = width - left - 10, height - bottom - top
    slot = plot_w / len(counts)
    parts = [f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{tallest}</text>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#888"/>',
             f'<text x="{left}" y="{height - 8}">{edges[0]:,.0f} ms</text>',
             f'<text x="{width - 10}" y="{height - 8}" text-anchor="end">{edges[-1]:,.0f} ms</text>']  # fmt: skip
    for i, count in enumerate(counts):
        h = count / tallest * plot_h
        parts.append(f'<rect x="{left + i * slot + 1:.1f}" y="{top + plot_h - h:.1f}" width="{slot - 2:.1f}" '
                     f'height="{h:.1f}" fill="#4f7cff"><title>{count}</title></rect>')  # fmt: skip
    for j, (name, ms) in enumerate(marks.items()):
        x = left + (ms - edges[0]) / span * plot_w
        anchor, dx = ("end", -4) if x > width * 0.7 else ("start", 4)
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{top + plot_h}" stroke="#d9480f" '
                     f'stroke-dasharray="4 3"/><text x="{x + dx:.1f}" y="{top + 8 + 14 * j}" text-anchor="{anchor}" '
                     f'fill="#d9480f">{e(name)} {ms:,.0f} ms</text>')  # fmt: skip
    return f'<svg viewBox="0 0 {width} {height}" role="img" class="chart">{"".join(parts)}</svg>'


def section(title: str, body: str) -> str:
    return f"<section><h2>{e(title)}</h2>{body}</section>" if body else ""


# --- page sections ---------------------------------------------------------------------------------------------
def _sources(report: dict, kind: str) -> list[str]:
    return [i["source"] for i in report["inputs"] if i["kind"] == kind]


def _card(report: dict, title: str, path: str) -> str:
    value = flatten(report["figures"]).get(path)
    if value is None:
        return ""
    change, badge = report["changes"].get(path), ""
    if change and change["verdict"] != "same":
        badge = f'<span class="{change["verdict"]}">{fmt_delta(path, change["delta"])}</span>'
    return (
        f'<div class="card"><div class="label">{e(title)}</div><div class="big">{fmt(path, value)}</div>{badge}</div>'
    )


def render_cards(report: dict) -> str:
    cards = []
    for item in report["inputs"]:
        source, figures = item["source"], report["figures"][item["source"]]
        for key in CARDS.get(item["kind"], ()):
            cards.append(_card(report, f"{source} {key.replace('_', ' ')}", f"{source}.{key}"))
        for system, values in figures.get("systems", {}).items():
            for key in (k for k in values if k.startswith("ndcg")):
                cards.append(_card(report, f"{system} {key}", f"{source}.systems.{system}.{key}"))
    for source in report["figures"]["latency"]:
        cards.append(_card(report, f"{source} p95 turn", f"latency.{source}.p95"))
    return f'<div class="cards">{"".join(cards)}</div>'


def render_cases(report: dict) -> str:
    out = []
    for source in _sources(report, "cases"):
        kinds = report["figures"][source].get("by_kind", {})
        bars = [(k, v.get("pass_rate", 0), f"{v.get('pass_rate', 0):.0%} of {v.get('cases', 0)}", None)
                for k, v in kinds.items()]  # fmt: skip
        out.append(f"<h3>{e(source)}: pass rate by kind</h3>{svg_bars(bars)}" if bars else "")
        columns = ("case", "kind", "turn", "message", "reasons", "reply", "cards")
        rows = [[e("; ".join(map(str, v)) if isinstance(v := f.get(c, ""), list) else v) for c in columns]
                for f in report["details"]["failures"].get(source, []) if isinstance(f, dict)]  # fmt: skip
        if rows:
            total = report["figures"][source].get("failures", len(rows))
            out.append(f"<h3>{e(source)}: failures (first {len(rows)} of {total})</h3>{table(list(columns), rows)}")
    return "".join(out)


def render_hygiene(report: dict) -> str:
    rates = report["figures"]["hygiene"]
    checks = sorted({c for r in rates.values() for c in r})
    if not checks:
        return ""
    rows = [[e(s), e(report["details"]["hygiene"].get(s, {}).get("turns", ""))]
            + [fmt("hygiene.x", r.get(c)) for c in checks] for s, r in rates.items()]  # fmt: skip
    out = [table(["source", "turns", *map(e, checks)], rows)]
    for source, info in report["details"]["hygiene"].items():
        for check, examples in info.get("examples", {}).items():
            items = "".join(f"<li><q>{e(x.get('message', ''))}</q> → <q>{e(x.get('reply', ''))}</q></li>"
                            for x in examples if isinstance(x, dict))  # fmt: skip
            out.append(f"<details><summary>{e(source)}: {e(check)}</summary><ul>{items}</ul></details>")
    return "".join(out)


def render_confusion(report: dict) -> str:
    out = []
    for source, matrix in report["details"]["goal_confusion"].items():
        predicted = sorted({p for row in matrix.values() for p in row})
        rows = []
        for gold, row in matrix.items():
            total = sum(row.values()) or 1
            cells = [f'<span class="cell" style="background:rgba(79,124,255,{row.get(p, 0) / total:.2f})">'
                     f"{row.get(p, 0)}</span>" for p in predicted]  # fmt: skip
            rows.append([f"<b>{e(gold)}</b>", *cells])
        out.append(
            f"<h3>{e(source)}: gold goal (rows) × predicted</h3>"
            + table(["gold \\ predicted", *map(e, predicted)], rows)
        )
    return "".join(out)


def render_simulate(report: dict) -> str:
    out = []
    for source in _sources(report, "simulate"):
        personas = report["figures"][source].get("personas", {})
        bars = [(name, p.get("hit_rate", 0), f"{p.get('hit_rate', 0):.0%}, pass^k {p.get('pass^k', 0):.0%}",
                 p.get("pass^k")) for name, p in personas.items()]  # fmt: skip
        if bars:
            out.append(f"<h3>{e(source)}: hit rate by persona (thin bar: pass^k)</h3>{svg_bars(bars)}")
    return "".join(out)


def render_latency(report: dict) -> str:
    out = []
    for source, hist in report["details"]["latency_histogram"].items():
        figures = report["figures"]["latency"].get(source, {})
        marks = {k: figures[k] for k in ("p50", "p95") if k in figures}
        out.append(
            f"<h3>{e(source)}: {figures.get('n', 0)} turns</h3>{svg_histogram(hist['edges'], hist['counts'], marks)}"
        )
    rows = [
        [e(s), *(fmt("latency.x", f.get(k)) for k in ("p50", "p95", "max"))]
        for s, f in report["figures"]["latency"].items()
    ]
    return "".join(out) + (table(["source", "p50", "p95", "max"], rows) if rows else "")


def render_flat(report: dict, kind: str) -> str:
    """Every figure of each input of ``kind`` as a two-column table."""
    out = []
    for source in _sources(report, kind):
        rows = [[e(k), fmt(k, v)] for k, v in flatten(report["figures"][source]).items()]
        out.append(f"<h3>{e(source)}</h3>{table(['figure', 'value'], rows)}")
    return "".join(out)


def render_logs(report: dict) -> str:
    out = [render_flat(report, "logs")]
    for source, mix in report["details"]["intent_mix"].items():
        bars = [(str(k), v, f"{v:.0%}", None) for k, v in (mix or {}).items() if is_num(v)]
        out.append(f"<h3>{e(source)}: intent mix</h3>{svg_bars(bars)}" if bars else "")
    return "".join(out)


def render_changes(report: dict) -> str:
    if not report["changes"]:
        return "<p>No previous report in this folder: changes appear from the next run on.</p>"
    arrows = {"higher": "higher ↑", "lower": "lower ↓", None: "–"}
    rows = [[e(p), fmt(p, c["before"]), fmt(p, c["now"]), f'<span class="{e(c["verdict"])}">'
             f'{fmt_delta(p, c["delta"])}</span>', arrows.get(c["better"], "–")]
            for p, c in report["changes"].items() if c["verdict"] != "same"]  # fmt: skip
    same = sum(c["verdict"] == "same" for c in report["changes"].values())
    note = f"<p>Compared with the report of {e(report.get('previous'))}; {same} figures unchanged.</p>"
    return note + table(["figure", "before", "now", "change", "better"], rows)


CSS = """body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1100px;margin:auto;padding:16px}header{background:#1c2f73;color:#fff;padding:16px}
header h1{margin:0 0 4px;font-size:22px}header p{margin:2px 0;font-size:13px;word-break:break-all}
section{background:#fff;border-radius:8px;padding:12px 16px;margin:14px 0;box-shadow:0 1px 2px #0001}
h2{font-size:18px;margin:4px 0 10px}h3{font-size:15px;margin:14px 0 6px}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{flex:1 1 150px;background:#fff;border-radius:8px;padding:10px 12px;
box-shadow:0 1px 2px #0002}.label{font-size:12px;color:#5b6475}.big{font-size:24px;font-weight:600}
.scroll{overflow-x:auto}table{border-collapse:collapse;font-size:13px;min-width:100%}
th,td{border-bottom:1px solid #e3e6eb;padding:4px 8px;text-align:left;vertical-align:top}td{max-width:360px}
.chart{width:100%;max-width:720px;height:auto;font-size:13px}.cell{display:block;padding:2px 6px;border-radius:3px}
.better{color:#1b7a36;font-weight:600}.worse{color:#c92a2a;font-weight:600}.changed{color:#5b6475}
q{quotes:none;background:#f1f3f6;padding:0 3px}li{margin:4px 0;overflow-wrap:anywhere}
@media (max-width:480px){main{padding:8px}section{padding:10px}.big{font-size:20px}}"""


def render_page(report: dict) -> str:
    """The whole index.html: self-contained, no scripts, no external resources."""
    inputs = "".join(f"<p>{e(i['source'])}: {e(i['file'])}</p>" for i in report["inputs"])
    body = "".join([
        render_cards(report),
        section("Conversation cases", render_cases(report)),
        section("Reply hygiene (share of turns; lower is better)", render_hygiene(report)),
        section("Goal confusion", render_confusion(report)),
        section("Simulated shoppers", render_simulate(report)),
        section("Turn latency", render_latency(report)),
        section("Retrieval", render_flat(report, "retrieval")),
        section("Intents", render_flat(report, "intents")),
        section("Log health", render_logs(report)),
        section("Changes since the previous report", render_changes(report)),
    ])  # fmt: skip
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>Kefu eval report</title>'
            f"<style>{CSS}</style></head><body><header><h1>Kefu eval report</h1><p>Generated "
            f"{e(report['generated_at'])}</p>{inputs}</header><main>{body}</main></body></html>\n")  # fmt: skip
