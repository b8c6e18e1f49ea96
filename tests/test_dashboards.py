"""The shipped dashboards query only what multivac writes.

Every Flux query of the Grafana dashboard and of the InfluxDB template is read, and
each measurement, field, tag and column it names must be in the schema of
multivac.model (or a Flux built-in, or a column the query itself makes).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from multivac import model

ROOT = Path(__file__).resolve().parents[1]
GRAFANA = ROOT / "dashboards" / "grafana" / "multivac.json"
GRAFANA_ALERTS = ROOT / "dashboards" / "grafana" / "alert-rules.yaml"
TEMPLATE = ROOT / "dashboards" / "influxdb" / "multivac-template.yml"

#: the failure catalog's types (multivac/rules); a measurement is one of these or an outcome
CATALOG = frozenset(
    {
        "test_failure",
        "compile_error",
        "lint_error",
        "dependency_error",
        "network_error",
        "checkout_error",
        "docker_error",
        "out_of_disk",
        "out_of_memory",
        "crash",
        "runner_error",
        "rate_limited",
        "permission_error",
        "artifact_error",
    }
)
#: the record types other than jobs, each with its fixed measurement
OTHER_RECORDS = {model.STEPS: model.STEP_SCHEMA, model.RUNS: model.RUN_SCHEMA}
OTHER_RECORDS[model.RUNNER_LOAD] = model.LOAD_SCHEMA
SCHEMAS = (model.JOB_SCHEMA, *OTHER_RECORDS.values())
MEASUREMENTS = (
    CATALOG
    | {
        model.SUCCESS,
        model.CANCELLED,
        model.UNKNOWN_FAILURE,
        model.LOG_UNAVAILABLE,
        model.TIMEOUT,
    }
    | set(OTHER_RECORDS)
)
# --lean-tags moves the ids to fields
FIELDS = frozenset(key for schema in SCHEMAS for key in schema.columns(lean=True)[1])
TAGS = frozenset(key for schema in SCHEMAS for key in schema.tags)
FLUX_COLUMNS = frozenset({"_time", "_value", "_field", "_measurement", "_start", "_stop"})
CONCLUSIONS = frozenset(
    {
        "success",
        "failure",
        "cancelled",
        "timed_out",
        "startup_failure",
        "neutral",
        "action_required",
        "skipped",
        "stale",
    }
)


# ---------------------------------------------------------------------------- extraction


def grafana_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(GRAFANA.read_text(encoding="utf-8"))
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append((f"grafana panel {panel['title']!r}", target["query"]))
    for variable in dashboard["templating"]["list"]:
        if variable.get("type") == "query":
            found.append((f"grafana variable {variable['name']!r}", variable["query"]))
    return found


def template_queries() -> list[tuple[str, str]]:
    found = []
    for doc in yaml.safe_load_all(TEMPLATE.read_text(encoding="utf-8")):
        spec = doc["spec"]
        if doc["kind"] == "Variable" and spec.get("type") == "query":
            found.append((f"influxdb variable {spec['name']!r}", spec["query"]))
        for chart in spec.get("charts", []):
            for query in chart.get("queries") or []:
                found.append((f"influxdb chart {chart['name']!r}", query["query"]))
        if doc["kind"] == "CheckThreshold":
            found.append((f"influxdb check {spec['name']!r}", spec["query"]))
    return found


def grafana_alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(GRAFANA_ALERTS.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"]]


def grafana_alert_queries() -> list[tuple[str, str]]:
    return [
        (f"grafana alert {rule['title']!r}", item["model"]["query"])
        for rule in grafana_alert_rules()
        for item in rule["data"]
        if item["datasourceUid"] != "__expr__"
    ]


ALL_QUERIES = grafana_queries() + template_queries() + grafana_alert_queries()


def strip_comments(flux: str) -> str:
    return "\n".join(re.sub(r'//[^"\n]*$', "", line) for line in flux.splitlines())


def strings(text: str) -> list[str]:
    return re.findall(r'"([^"]*)"', text)


def defined_columns(flux: str) -> set[str]:
    """Columns the query makes itself: record keys of map/reduce, set(key:), rename targets."""
    made: set[str] = set()
    for body in re.findall(r"\(\{(.*?)\}\)", flux, re.S):
        body = re.sub(r"^\s*r\s+with\b", "", body)
        made |= set(re.findall(r"(?:^|[,{\s])([A-Za-z_]\w*)\s*:", body))
    for body in re.findall(r"identity:\s*\{(.*?)\}", flux, re.S):
        made |= set(re.findall(r"(?:^|[,{\s])([A-Za-z_]\w*)\s*:", body))
    made |= set(re.findall(r'\bset\(\s*key:\s*"([^"]+)"', flux))
    for body in re.findall(r"\brename\(\s*columns:\s*\{(.*?)\}", flux, re.S):
        made |= set(strings(body))
    return made


def named_columns(flux: str) -> list[tuple[str, str]]:
    """(how, name) for every column the query reads or lists."""
    named: list[tuple[str, str]] = []
    for name in re.findall(r"\br\.([A-Za-z_]\w*)", flux):
        named.append(("r.", name))
    for name in re.findall(r'\br\["([^"]+)"\]', flux):
        named.append(('r["..."]', name))
    for keyword in ("columns", "rowKey", "columnKey"):
        for body in re.findall(rf"\b{keyword}:\s*\[(.*?)\]", flux, re.S):
            named += [(f"{keyword}: [...]", name) for name in strings(body)]
    for keyword in ("valueColumn", "column", "timeColumn", "tag", "sortBy"):
        for name in re.findall(rf'\b{keyword}:\s*"([^"]+)"', flux):
            named.append((f"{keyword}:", name))
    for body in re.findall(r"\brename\(\s*columns:\s*\{(.*?)\}", flux, re.S):
        named += [("rename", name) for name in re.findall(r"([A-Za-z_]\w*)\s*:", body)]
    return named


def compared(flux: str, column: str) -> list[str]:
    """Values compared with r.<column> (==, !=) or listed in an anchored regex alternation."""
    values = re.findall(rf'\br\.{column}\s*[!=]=\s*"([^"]*)"', flux)
    for pattern in re.findall(rf"\br\.{column}\s*[!=]~\s*/(.*?)/", flux):
        inner = pattern.removeprefix("^").removesuffix("$").strip("()")
        if re.fullmatch(r"[\w|]+", inner):
            values += inner.split("|")
    return values


# ---------------------------------------------------------------------------- files


PANELS = 8


def test_grafana_dashboard_is_json_with_its_panels() -> None:
    dashboard = json.loads(GRAFANA.read_text(encoding="utf-8"))
    titles = [panel["title"] for panel in dashboard["panels"]]
    assert len(titles) == PANELS, titles
    for title in ("Usage by runner label", "Cost by failure type", "Queue depth by runner label"):
        assert title in titles
    variables = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert "bucket" in variables
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            assert 'from(bucket: "${bucket}")' in target["query"], panel["title"]
    assert len({panel["id"] for panel in dashboard["panels"]}) == PANELS


def test_influxdb_template_is_an_influx_apply_package() -> None:
    docs = list(yaml.safe_load_all(TEMPLATE.read_text(encoding="utf-8")))
    assert all(doc["apiVersion"] == "influxdata.com/v2alpha1" for doc in docs)
    for doc in docs:
        # influx apply wants DNS-style resource names
        assert re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", doc["metadata"]["name"]), doc
    dashboards = [doc for doc in docs if doc["kind"] == "Dashboard"]
    assert len(dashboards) == 1
    charts = dashboards[0]["spec"]["charts"]
    assert len(charts) == PANELS
    variables = {doc["spec"]["name"] for doc in docs if doc["kind"] == "Variable"}
    assert "bucket" in variables
    for chart in charts:
        assert chart["kind"] in {"Xy", "Table"}
        for query in chart["queries"]:
            assert "from(bucket: v.bucket)" in query["query"], chart["name"]


def test_both_dashboards_show_the_same_charts() -> None:
    dashboard = json.loads(GRAFANA.read_text(encoding="utf-8"))
    grafana = sorted(panel["title"] for panel in dashboard["panels"])
    docs = yaml.safe_load_all(TEMPLATE.read_text(encoding="utf-8"))
    charts = next(doc for doc in docs if doc["kind"] == "Dashboard")["spec"]["charts"]
    assert sorted(chart["name"] for chart in charts) == grafana


def test_there_are_queries_to_check() -> None:
    assert len(grafana_queries()) >= 6
    assert len(template_queries()) >= 9
    assert len(grafana_alert_queries()) == 4


# ---------------------------------------------------------------------------- alerts


def template_docs(kind: str) -> list[dict[str, Any]]:
    docs = yaml.safe_load_all(TEMPLATE.read_text(encoding="utf-8"))
    return [doc for doc in docs if doc["kind"] == kind]


ALERT_NAMES = {"multivac: failure type spike", "multivac: queue time p95", "multivac: flaky share"}
#: a check cannot look before its schedule's window, so "not seen before" is Grafana's
GRAFANA_ONLY = {"multivac: new failure signature"}


def test_grafana_and_influxdb_alert_on_the_same_conditions() -> None:
    checks = {doc["spec"]["name"] for doc in template_docs("CheckThreshold")}
    rules = {rule["title"] for rule in grafana_alert_rules()}
    assert checks == ALERT_NAMES
    assert rules == ALERT_NAMES | GRAFANA_ONLY


@pytest.mark.parametrize("check", template_docs("CheckThreshold"), ids=lambda d: d["spec"]["name"])
def test_each_check_is_one_pipeline_over_its_schedule(check: dict[str, Any]) -> None:
    """What InfluxDB requires of a threshold check's query (notification/check/threshold.go):
    one field compared with ==, one expression statement, and a range that is its `every`
    (InfluxDB rewrites `start:` to -every anyway)."""
    spec = check["spec"]
    flux = strip_comments(spec["query"])
    assert len(re.findall(r'\br\._field\s*==\s*"', flux)) == 1
    body = [line for line in flux.splitlines() if line and not line.startswith("import ")]
    assert not any(re.match(r"^[A-Za-z_]\w*\s*=", line) for line in body), "a variable"
    assert re.findall(r"range\(start: -(\w+)\)", flux) == [spec["every"]]
    for window in re.findall(r"aggregateWindow\(every: (\w+)", flux):
        assert window == spec["every"]
    assert 'from(bucket: "multivac")' in flux
    assert {"key": "source", "value": "multivac"} in spec["tags"]
    (threshold,) = spec["thresholds"]
    assert threshold["type"] == "greater" and threshold["level"] == "CRIT"
    assert isinstance(threshold["value"], float)


def test_the_notification_rule_sends_every_check_to_the_endpoint() -> None:
    (rule,) = template_docs("NotificationRule")
    endpoints = {doc["metadata"]["name"]: doc for doc in template_docs("NotificationEndpointSlack")}
    assert rule["spec"]["endpointName"] in endpoints
    # the Slack URL is a secret: only a placeholder, and the endpoint starts inactive
    endpoint = endpoints[rule["spec"]["endpointName"]]["spec"]
    assert "REPLACE" in endpoint["url"] and endpoint["status"] == "inactive"
    assert {"currentLevel": "CRIT"} in rule["spec"]["statusRules"]
    assert rule["spec"]["tagRules"] == [{"key": "source", "value": "multivac", "operator": "equal"}]


@pytest.mark.parametrize("rule", grafana_alert_rules(), ids=lambda r: r["title"])
def test_each_grafana_alert_rule_is_complete(rule: dict[str, Any]) -> None:
    dashboard = json.loads(GRAFANA.read_text(encoding="utf-8"))
    refs = [item["refId"] for item in rule["data"]]
    assert rule["condition"] in refs and len(set(refs)) == len(refs)
    assert rule["uid"].startswith("multivac-") and rule["labels"] == {"source": "multivac"}
    assert rule["dashboardUid"] == dashboard["uid"]
    assert rule["panelId"] in {panel["id"] for panel in dashboard["panels"]}
    for item in rule["data"]:
        model = item["model"]
        assert model["refId"] == item["refId"]
        if item["datasourceUid"] == "__expr__":
            assert model.get("expression") in refs
        else:
            assert item["datasourceUid"] == "multivac-influxdb"
            assert 'from(bucket: "multivac")' in model["query"]


# ---------------------------------------------------------------------------- the schema


@pytest.mark.parametrize(("where", "flux"), ALL_QUERIES, ids=[where for where, _ in ALL_QUERIES])
def test_flux_names_only_schema_columns(where: str, flux: str) -> None:
    flux = strip_comments(flux)
    allowed = TAGS | FIELDS | FLUX_COLUMNS | defined_columns(flux)
    if flux.lstrip().startswith("buckets()"):
        allowed |= {"name"}  # the columns of buckets(), not multivac's data
    bad = [(how, name) for how, name in named_columns(flux) if name not in allowed]
    assert not bad, f"{where}: not in multivac's schema: {bad}"


@pytest.mark.parametrize(("where", "flux"), ALL_QUERIES, ids=[where for where, _ in ALL_QUERIES])
def test_flux_values_are_ones_multivac_writes(where: str, flux: str) -> None:
    flux = strip_comments(flux)
    for measurement in compared(flux, "_measurement"):
        assert measurement in MEASUREMENTS, f"{where}: unknown measurement {measurement!r}"
    for name in compared(flux, "_field"):
        assert name in FIELDS, f"{where}: unknown field {name!r}"
    for status in compared(flux, "status"):
        assert status in CONCLUSIONS, f"{where}: {status!r} is not a job conclusion"
    for flaky in compared(flux, "flaky"):
        assert flaky == "true", f"{where}: the flaky tag is only ever 'true'"


def measurements_selected(flux: str) -> set[str]:
    """Measurements the query keeps with `r._measurement == "..."`."""
    return set(re.findall(r'\br\._measurement\s*==\s*"([^"]*)"', flux))


@pytest.mark.parametrize(("where", "flux"), ALL_QUERIES, ids=[where for where, _ in ALL_QUERIES])
def test_a_query_of_one_record_type_names_only_its_columns(where: str, flux: str) -> None:
    """`runner_load` has no `repository`, `runs` no `job_name`: a query that keeps one
    such measurement may name only the tags and fields of that record type."""
    flux = strip_comments(flux)
    chosen = measurements_selected(flux) & set(OTHER_RECORDS)
    if not chosen:
        return
    allowed = FLUX_COLUMNS | defined_columns(flux)
    for measurement in chosen:
        tags, fields = OTHER_RECORDS[measurement].columns(lean=True)
        allowed |= set(tags) | set(fields)
    bad = [(how, name) for how, name in named_columns(flux) if name not in allowed]
    bad += [("_field", name) for name in compared(flux, "_field") if name not in allowed]
    assert not bad, f"{where}: not columns of {sorted(chosen)}: {bad}"


def test_queries_of_job_fields_shared_with_runs_leave_the_runs_out() -> None:
    """`queued_s` and `html_url` are fields of runs points too: a query of them must
    filter to the jobs (by status, or by leaving `runs` out)."""
    shared = set(model.FIELD_KEYS) & set(model.RUN_FIELD_KEYS)
    assert shared == {"queued_s", "billable_min", "cost_usd", "html_url"}
    for where, flux in ALL_QUERIES:
        flux = strip_comments(flux)
        if not set(compared(flux, "_field")) & shared:
            continue
        keeps_jobs = (
            bool(compared(flux, "status"))
            or f'r._measurement != "{model.RUNS}"' in flux
            or bool(measurements_selected(flux) - {model.RUNS})
        )
        assert keeps_jobs, f"{where}: reads a field runs points have too"


def test_the_checker_catches_names_outside_the_schema() -> None:
    bad = """from(bucket: v.bucket)
      |> filter(fn: (r) => r._measurement == "job_failures" and r._field == "duration")
      |> filter(fn: (r) => r["host"] == "x" and r.runner == "y")
      |> group(columns: ["repo"])
      |> map(fn: (r) => ({r with share: 1.0}))
      |> keep(columns: ["share", "_time"])"""
    names = {name for _, name in named_columns(bad)}
    allowed = TAGS | FIELDS | FLUX_COLUMNS | defined_columns(bad)
    assert names - allowed == {"host", "runner", "repo"}
    assert compared(bad, "_measurement") == ["job_failures"]
    assert compared(bad, "_field") == ["duration"]
    regex = "filter(fn: (r) => r._measurement =~ /^(test_failure|crash)$/)"
    assert compared(regex, "_measurement") == ["test_failure", "crash"]


@pytest.mark.parametrize(
    "kind", [model.JobRecord, model.StepRecord, model.RunRecord, model.LoadRecord]
)
def test_every_tag_and_field_is_known_to_the_checker(kind: type[model.Record]) -> None:
    # the schema the tests import is the one the sinks write
    for lean in (False, True):
        row: dict[str, Any] = kind("m", 0, {}, {}).row(lean=lean)
        assert set(row) - {"time", "measurement"} <= TAGS | FIELDS
