#!/usr/bin/env python3
"""Cross-checks of ops/ that promtool cannot do (run by ops/check.sh; standard library only).

- ops/grafana/tumbleweed.json is valid JSON, declares the DS_PROMETHEUS input, and every panel
  and query uses that data source;
- every metric named in the alert rules and the dashboard is one the sink exposes: the name
  given to `register(registry, "<name>", …)`, `live_gauge(enc, "<name>", …)` or
  `live_gauges(enc, "<name>", …)` in sink/src (written whole, counters with `_total`: see
  sink/src/metrics.rs), or a `# HELP`/`# TYPE <name>` line; a histogram's series add `_bucket`
  (with its `le` label), `_sum` and `_count` to the registered name;
- every label the rules and the dashboard group, match or template on is one the sink writes
  (a field of a struct deriving `EncodeLabelSet` in sink/src, or `<label>=\"{...}`) or one
  Prometheus adds (instance, job);
- every alert has summary, description and runbook_url, and the runbook_url's anchor is a
  heading of ops/RUNBOOK.md.

Also writes the dashboard's queries (Grafana variables replaced) as recording rules to the file
given as the second argument, so that ops/check.sh can have promtool parse them.

Usage: check_refs.py ROOT DASHBOARD_RULES_OUT EXPECTED_RULE_COUNT
Prints one line per problem (`ops/check: …`) and exits 1 if there is any.
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(sys.argv[1])
DASH_RULES_OUT = Path(sys.argv[2])
EXPECTED_RULES = int(sys.argv[3])

RULES = ROOT / "ops/prometheus/tumbleweed.rules.yml"
DASHBOARD = ROOT / "ops/grafana/tumbleweed.json"
RUNBOOK = ROOT / "ops/RUNBOOK.md"
SINK_SRC = ROOT / "sink/src"

# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = {"instance", "job", "__name__"}
# The bucket bound of a histogram's `_bucket` series.
HISTOGRAM_LABELS = {"le"}
# Words of PromQL that look like identifiers but are not metric names.
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "offset", "bool", "atan2", "inf", "nan",
}
IDENT = r"[a-zA-Z_:][a-zA-Z0-9_:]*"

problems = []


def problem(msg):
    problems.append(msg)


def rel(p):
    return str(p.relative_to(ROOT))


# --- what the sink exposes ---------------------------------------------------------------

def sink_metrics_and_labels():
    metrics, labels = set(), set()
    for f in sorted(SINK_SRC.rglob("*.rs")):
        text = f.read_text()
        metrics.update(re.findall(r"# (?:HELP|TYPE) (" + IDENT + ")", text))
        # The registry's calls (sink/src/metrics.rs): register(r, "name", …), live_gauge(s)(enc, "name", …).
        metrics.update(re.findall(
            r'\b(?:register|live_gauges?)\(\s*[^,()"]+,\s*"(tumbleweed_[a-z0-9_]+)"', text))
        # Label sets: #[derive(…EncodeLabelSet…)] struct X { field: T, … }.
        for body in re.findall(
                r"#\[derive\([^)]*\bEncodeLabelSet\b[^)]*\)\]\s*(?:pub(?:\([^)]*\))?\s+)?struct\s+\w+\s*\{([^}]*)\}",
                text):
            labels.update(re.findall(r"(?:^|,)\s*(?:pub(?:\([^)]*\))?\s+)?([a-zA-Z_][a-zA-Z0-9_]*)\s*:", body))
        # Label pairs written with a format placeholder: source=\"{}\", consumer=\"{consumer}\".
        labels.update(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)=\\"\{', text))
    return metrics, labels


# --- PromQL, just enough to find metric and label names -----------------------------------

def strip_strings(expr):
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)


def metric_names(expr):
    s = strip_strings(expr)
    s = re.sub(r"#[^\n]*", " ", s)
    s = re.sub(r"\{[^}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)  # ranges and subqueries
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\boffset\s+-?[0-9a-zA-Z]+", " ", s)
    names = set()
    for m in re.finditer(r"(?<![\w.$])(" + IDENT + r")\s*(\()?", s):
        name, call = m.group(1), m.group(2)
        if call or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


def label_names(expr):
    s = strip_strings(expr)
    out = set()
    for block in re.findall(r"\{([^}]*)\}", s):
        out.update(re.findall(r"(" + IDENT + r")\s*(?:=~|!~|!=|=)", block))
    for group in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", s):
        out.update(x.strip() for x in group.split(",") if x.strip())
    return out


def exposed(name, metrics):
    base = re.sub(r"_(?:bucket|sum|count)$", "", name)
    return name in metrics or base in metrics


def check_names(where, expr, metrics, labels):
    for name in sorted(metric_names(expr)):
        if not exposed(name, metrics):
            problem(f"{where}: metric {name} is not exposed by the sink (not registered in sink/src)")
    for label in sorted(label_names(expr)):
        if label not in labels:
            problem(f"{where}: label {label} is not one the sink writes (sink/src) nor instance/job")


# --- the rules file, read as the YAML subset it is written in ------------------------------

def unquote(v):
    v = v.strip()
    if v.startswith('"'):
        return json.loads(v)
    if v.startswith("'"):
        return v[1:-1].replace("''", "'")
    return v


def read_rules(path):
    """[{name, kind, expr, annotations}] from a rules file: `- alert:`/`- record:` items whose
    expr and annotations are plain or quoted scalars, or `|`/`>` blocks."""
    lines = path.read_text().splitlines()
    rules, cur, i = [], None, 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^(\s*)- (alert|record):\s*(.+?)\s*$", line)
        if m:
            cur = {"name": m.group(3), "kind": m.group(2), "expr": None, "annotations": {}}
            rules.append(cur)
            i += 1
            continue
        m = re.match(r"^(\s*)(expr|summary|description|runbook_url):\s*(.*?)\s*$", line)
        if m and cur is not None:
            indent, key, value = len(m.group(1)), m.group(2), m.group(3)
            if value[:1] in ("|", ">"):
                block = []
                i += 1
                while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                    block.append(lines[i].strip())
                    i += 1
                value = "\n".join(block).strip()
            else:
                value = unquote(value)
                i += 1
            if key == "expr":
                cur["expr"] = value
            else:
                cur["annotations"][key] = value
            continue
        i += 1
    return rules


def github_anchor(heading):
    a = heading.strip().lower()
    a = re.sub(r"[^\w\- ]", "", a)
    return a.replace(" ", "-")


def main():
    metrics, labels = sink_metrics_and_labels()
    labels |= TARGET_LABELS | HISTOGRAM_LABELS
    if not metrics:
        problem("found no metric in sink/src (no register/live_gauge calls): the metrics check cannot work")

    # Rules.
    rules = read_rules(RULES)
    if len(rules) != EXPECTED_RULES:
        problem(f"{rel(RULES)}: read {len(rules)} rules but promtool found {EXPECTED_RULES}: "
                "write expr and annotations as plain, quoted or block scalars")
    anchors = {github_anchor(h) for h in re.findall(r"^#+\s+(.+)$", RUNBOOK.read_text(), re.M)}
    for r in rules:
        where = f"{rel(RULES)}: {r['name']}"
        if not r["expr"]:
            problem(f"{where}: no expr found")
            continue
        check_names(where, r["expr"], metrics, labels)
        if r["kind"] != "alert":
            continue
        ann = r["annotations"]
        for key in ("summary", "description", "runbook_url"):
            if not ann.get(key):
                problem(f"{where}: annotation {key} is missing")
        for text in ann.values():
            for label in re.findall(r"\$labels\.(" + IDENT + ")", text):
                if label not in labels:
                    problem(f"{where}: annotation uses $labels.{label}, a label the sink does not write")
            for name in re.findall(r"\btumbleweed_[a-z0-9_]+\b", text):
                if name not in metrics:
                    problem(f"{where}: annotation names {name}, which the sink does not expose")
        url = ann.get("runbook_url", "")
        if url:
            doc, _, anchor = url.partition("#")
            if not doc.endswith("ops/RUNBOOK.md") or not anchor:
                problem(f"{where}: runbook_url {url} is not ops/RUNBOOK.md#<anchor>")
            elif anchor not in anchors:
                problem(f"{where}: runbook_url anchor #{anchor} has no heading in {rel(RUNBOOK)}")

    # Dashboard.
    try:
        dash = json.loads(DASHBOARD.read_text())
    except json.JSONDecodeError as e:
        problem(f"{rel(DASHBOARD)}: not valid JSON: {e}")
        return
    if not any(i.get("name") == "DS_PROMETHEUS" and i.get("pluginId") == "prometheus"
               for i in dash.get("__inputs", [])):
        problem(f"{rel(DASHBOARD)}: no DS_PROMETHEUS data source input in __inputs")
    ds_ok = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    records = []
    panels = list(dash.get("panels", []))
    for p in list(panels):
        panels.extend(p.get("panels", []))  # panels inside collapsed rows
    if not panels:
        problem(f"{rel(DASHBOARD)}: no panels")
    for p in panels:
        if p.get("type") == "row":
            continue
        where = f"{rel(DASHBOARD)}: panel {p.get('id')} \"{p.get('title')}\""
        if p.get("datasource") != ds_ok:
            problem(f"{where}: datasource is not ${{DS_PROMETHEUS}}")
        targets = p.get("targets") or []
        if not targets:
            problem(f"{where}: no queries")
        for t in targets:
            expr = t.get("expr", "")
            if not expr:
                problem(f"{where}: query {t.get('refId')} has no expr")
                continue
            if t.get("datasource", ds_ok) != ds_ok:
                problem(f"{where}: query {t.get('refId')} datasource is not ${{DS_PROMETHEUS}}")
            check_names(where, expr, metrics, labels)
            for label in re.findall(r"\{\{\s*(" + IDENT + r")\s*\}\}", t.get("legendFormat", "")):
                if label not in labels:
                    problem(f"{where}: legend uses {{{{{label}}}}}, a label the sink does not write")
            promql = re.sub(r"\$__\w+|\$\{__\w+\}", "5m", expr)
            promql = re.sub(r"\$\{?\w+\}?|\[\[\w+\]\]", ".*", promql)
            records.append({"record": f"tumbleweed_dashboard:panel_{p.get('id')}_{t.get('refId')}",
                            "expr": promql})
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        m = re.match(r"\s*label_values\(\s*(" + IDENT + r")\s*,\s*(" + IDENT + r")\s*\)\s*$", q)
        where = f"{rel(DASHBOARD)}: variable {v.get('name')}"
        if v.get("type") == "query":
            if not m:
                problem(f"{where}: query {q!r} is not label_values(<metric>, <label>)")
            else:
                if m.group(1) not in metrics:
                    problem(f"{where}: metric {m.group(1)} is not exposed by the sink")
                if m.group(2) not in labels:
                    problem(f"{where}: label {m.group(2)} is not one the sink writes")
    DASH_RULES_OUT.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": records}]}, indent=1))


main()
for p in problems:
    print(f"ops/check: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
