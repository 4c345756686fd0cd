"""Operations in template.yaml (issue 6): the alarms at the project's early-warning levels, the dashboard, and the
metrics they read, held to what the code emits. Static over the template and the sources, but for one test that
runs campaign_breaker.halt() against an in-memory control item and reads the EMF it prints."""

from __future__ import annotations

import ast
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from sesflow.engine.template import Resource, Template, load_template

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "functions" / "app"
NAMESPACE = "sesflow"  # app.observability: Metrics(namespace="sesflow", service="sesflow")
SERVICE_DIMENSION = ["service", "sesflow"]  # the default dimension Powertools adds for `service`

# (alarm, metric, parameter, its default): the account-wide reputation alarms.
REPUTATION_ALARMS = [
    ("BounceRateWarnAlarm", "Reputation.BounceRate", "BounceWarnRate", 0.02),
    ("BounceRateHaltAlarm", "Reputation.BounceRate", "BounceHaltRate", 0.04),
    ("ComplaintRateWarnAlarm", "Reputation.ComplaintRate", "ComplaintWarnRate", 0.0005),
    ("ComplaintRateHaltAlarm", "Reputation.ComplaintRate", "ComplaintHaltRate", 0.0008),
]


@cache
def template() -> Template:
    return load_template(ROOT / "template.yaml")


@cache
def raw() -> dict[str, Any]:
    """The template as written (intrinsics unresolved), for checks on what a property refers to."""
    from cfnlint.decode import cfn_yaml

    return cfn_yaml.load(str(ROOT / "template.yaml"))


def alarms() -> list[Resource]:
    return template().of_type("AWS::CloudWatch::Alarm")


def alarm(logical_id: str) -> Resource:
    resource = template().resources[logical_id]
    assert resource.type == "AWS::CloudWatch::Alarm"
    return resource


def dimensions(resource: Resource) -> dict[str, str]:
    return {d["Name"]: d["Value"] for d in resource.properties.get("Dimensions", [])}


def dashboard_body(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    t = load_template(ROOT / "template.yaml", parameter_overrides=overrides) if overrides else template()
    (board,) = t.of_type("AWS::CloudWatch::Dashboard")
    return json.loads(board.properties["DashboardBody"])


def plotted(body: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(namespace, metric name, dimension name/value pairs) of every metric a widget plots. A row may repeat the
    previous row's leading fields with "." (CloudWatch's shorthand); the trailing dict holds rendering options."""
    found = []
    for widget in body["widgets"]:
        previous: list[Any] = []
        for row in widget.get("properties", {}).get("metrics", []):
            fields = [f for f in row if not isinstance(f, dict)]
            fields = [previous[i] if f == "." else f for i, f in enumerate(fields)]
            previous = fields
            if len(fields) >= 2:
                found.append((fields[0], fields[1], fields[2:]))
    return found


# ------------------------------------------------------------------------------ parameters


@pytest.mark.parametrize(("_alarm", "_metric", "parameter", "default"), REPUTATION_ALARMS)
def test_rate_parameters_are_fractions_below_the_levels_aws_reviews_at(_alarm, _metric, parameter, default):
    spec = raw()["Parameters"][parameter]
    assert spec["Type"] == "Number" and float(spec["Default"]) == default
    assert spec.get("Description")
    review = 0.05 if parameter.startswith("Bounce") else 0.001
    assert 0 < float(spec["MinValue"]) <= default < review <= float(spec["MaxValue"])


def test_warn_levels_are_below_halt_levels_by_default():
    params = template().parameters
    assert float(params["BounceWarnRate"]) < float(params["BounceHaltRate"])
    assert float(params["ComplaintWarnRate"]) < float(params["ComplaintHaltRate"])


# ------------------------------------------------------------------------------ alarms


@pytest.mark.parametrize(("logical_id", "metric", "parameter", "default"), REPUTATION_ALARMS)
def test_reputation_alarm_fires_above_its_parameter(logical_id, metric, parameter, default):
    props = alarm(logical_id).properties
    assert (props["Namespace"], props["MetricName"]) == ("AWS/SES", metric)
    assert "Dimensions" not in props, "SES reputation metrics are account-wide: no dimensions"
    assert props["ComparisonOperator"] == "GreaterThanThreshold"  # as the breaker: "above the level"
    assert raw()["Resources"][logical_id]["Properties"]["Threshold"] == {"Ref": parameter}
    assert float(props["Threshold"]) == default
    assert props["Statistic"] in ("Maximum", "Average")
    assert props["TreatMissingData"] == "ignore", "a rolling rate: no new datapoint is not a recovery"


def test_reputation_thresholds_follow_parameter_overrides():
    t = load_template(ROOT / "template.yaml", parameter_overrides={"BounceHaltRate": 0.03})
    assert float(t.resources["BounceRateHaltAlarm"].properties["Threshold"]) == 0.03


def test_every_alarm_notifies_the_alert_topic_and_tells_the_operator_what_to_do():
    assert len(alarms()) >= 7
    topic = {"Ref": "AlertTopic"}
    for resource in alarms():
        written = raw()["Resources"][resource.logical_id]["Properties"]
        assert written["AlarmActions"] == [topic], resource.logical_id
        assert written.get("OKActions", [topic]) == [topic], resource.logical_id
        assert len(written.get("AlarmDescription", "")) > 80, f"{resource.logical_id}: say what to do"
        assert written.get("TreatMissingData") in ("ignore", "notBreaching", "breaching", "missing")


def test_dead_letter_alarm_watches_the_feedback_dlq():
    dlq = alarm("FeedbackDeadLetterAlarm")
    props = dlq.properties
    assert (props["Namespace"], props["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert dimensions(dlq) == {"QueueName": template().resources["FeedbackDeadLetterQueue"].attributes["QueueName"]}
    assert (props["ComparisonOperator"], float(props["Threshold"])) == ("GreaterThanThreshold", 0)
    assert props["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize(("logical_id", "machine"), [
    ("CampaignExecutionsFailedAlarm", "CampaignStateMachine"),
    ("LifecycleExecutionsFailedAlarm", "RecipientLifecycleStateMachine"),
    ("MigrateContactsExecutionsFailedAlarm", "MigrateContactsStateMachine"),
])
def test_executions_failed_alarm_watches_its_state_machine(logical_id, machine):
    found = alarm(logical_id)
    props = found.properties
    assert (props["Namespace"], props["MetricName"]) == ("AWS/States", "ExecutionsFailed")
    assert dimensions(found) == {"StateMachineArn": template().resources[machine].physical_id}
    assert (props["Statistic"], props["ComparisonOperator"], float(props["Threshold"])) == (
        "Sum", "GreaterThanThreshold", 0)


def test_every_state_machine_has_an_executions_failed_alarm():
    watched = {dimensions(a).get("StateMachineArn") for a in alarms()
               if a.properties["MetricName"] == "ExecutionsFailed"}
    machines = template().of_type("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
    assert {m.physical_id for m in machines} <= watched


# ------------------------------------------------------------------------------ dashboard


def test_dashboard_body_is_json_with_the_reputation_levels_as_annotations():
    body = dashboard_body()
    by_metric = {}
    for widget in body["widgets"]:
        for _, name, _ in plotted({"widgets": [widget]}):
            by_metric.setdefault(name, widget)
    levels = {
        "Reputation.BounceRate": {0.02, 0.04},
        "Reputation.ComplaintRate": {0.0005, 0.0008},
    }
    for metric, expected in levels.items():
        horizontal = by_metric[metric]["properties"]["annotations"]["horizontal"]
        assert expected <= {a["value"] for a in horizontal}, metric


def test_dashboard_annotations_follow_parameter_overrides():
    body = dashboard_body({"ComplaintWarnRate": 0.0004})
    values = {a["value"] for w in body["widgets"]
              for a in w.get("properties", {}).get("annotations", {}).get("horizontal", [])}
    assert 0.0004 in values and 0.0005 not in values


def test_dashboard_plots_the_campaign_machine_and_the_dlq():
    t = template()
    metrics = plotted(dashboard_body())
    campaign = t.resources["CampaignStateMachine"].physical_id
    for name in ("ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed"):
        assert ("AWS/States", name, ["StateMachineArn", campaign]) in metrics, name
    dlq = t.resources["FeedbackDeadLetterQueue"].attributes["QueueName"]
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", ["QueueName", dlq]) in metrics


def test_dashboard_alarm_widget_lists_every_alarm():
    listed = {a for w in dashboard_body()["widgets"] if w["type"] == "alarm" for a in w["properties"]["alarms"]}
    assert listed == {a.attributes["Arn"] for a in alarms()}


# ------------------------------------------------------------------------------ metrics: dashboard <-> code


def handler_modules() -> list[Path]:
    return sorted((APP / "handlers").glob("*.py"))


def add_metric_calls() -> list[tuple[Path, ast.Call]]:
    calls = []
    for path in sorted(APP.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_metric":
                calls.append((path, node))
    return calls


def metric_name(call: ast.Call) -> ast.expr:
    for keyword in call.keywords:
        if keyword.arg == "name":
            return keyword.value
    return call.args[0]


def literal_names(expr: ast.expr) -> set[str] | None:
    """The names a metric-name expression can take when it is a literal, or a choice between literals (a if c else
    b); None when the code computes it."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return {expr.value}
    if isinstance(expr, ast.IfExp):
        body, orelse = literal_names(expr.body), literal_names(expr.orelse)
        return body | orelse if body is not None and orelse is not None else None
    return None


def emitted_metric_names() -> set[str]:
    """Every metric name the code can emit: the literal names of add_metric calls, and the names of the one
    computed call (feedback by kind, from app.handlers.ingest_feedback's table)."""
    from app.handlers import ingest_feedback

    names = {ingest_feedback.FEEDBACK_OTHER, *ingest_feedback.FEEDBACK_METRICS.values()}
    for _, call in add_metric_calls():
        names |= literal_names(metric_name(call)) or set()
    return names


def test_metric_names_are_literals_but_for_the_feedback_kinds():
    computed = [f"{p.relative_to(ROOT)}:{c.lineno}" for p, c in add_metric_calls()
                if literal_names(metric_name(c)) is None]
    assert computed == [f"functions/app/handlers/ingest_feedback.py:{line}" for line in _count_by_kind_lines()], (
        "a metric name the checks cannot read: use a literal, or extend emitted_metric_names()")


def _count_by_kind_lines() -> list[int]:
    tree = ast.parse((APP / "handlers" / "ingest_feedback.py").read_text())
    (function,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "count_by_kind"]
    return [n.lineno for n in ast.walk(function)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "add_metric"]


def test_every_sesflow_metric_the_dashboard_plots_is_emitted_by_the_code():
    ours = [(name, dims) for namespace, name, dims in plotted(dashboard_body()) if namespace == NAMESPACE]
    assert {"EmailsSent", "CampaignsHalted", "FeedbackBounce", "FeedbackComplaint"} <= {n for n, _ in ours}
    missing = sorted({n for n, _ in ours} - emitted_metric_names())
    assert not missing, f"the dashboard plots metrics no code emits (renamed?): {missing}"
    for name, dims in ours:
        assert dims == SERVICE_DIMENSION, f"{name}: Powertools publishes under service=sesflow only, not {dims}"


def test_metrics_namespace_and_service_are_the_dashboards():
    source = (APP / "observability.py").read_text()
    assert f'Metrics(namespace="{NAMESPACE}", service="{SERVICE_DIMENSION[1]}")' in source
    env = template().resources["SendBatchFunction"].properties["Environment"]["Variables"]
    assert (env["POWERTOOLS_METRICS_NAMESPACE"], env["POWERTOOLS_SERVICE_NAME"]) == (NAMESPACE, SERVICE_DIMENSION[1])


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("app"))
    return found


def _reaches(module: str, target: str, seen: set[str]) -> bool:
    if module == target:
        return True
    if module in seen:
        return False
    seen.add(module)
    path = APP.parent / (module.replace(".", "/") + ".py")
    return path.exists() and any(_reaches(m, target, seen) for m in _imports(path))


def test_handlers_that_can_emit_metrics_flush_them():
    """Metrics are buffered until @metrics.log_metrics prints them: a handler that reaches an add_metric (its own
    or campaign_breaker.halt's CampaignsHalted) without it would lose them."""
    checked = []
    for path in handler_modules():
        module = f"app.handlers.{path.stem}"
        if "add_metric" not in path.read_text() and not _reaches(module, "app.campaign_breaker", set()):
            continue
        tree = ast.parse(path.read_text())
        handlers = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "lambda_handler"]
        assert handlers, f"{module} has no lambda_handler"
        assert "metrics.log_metrics" in {ast.unparse(d) for d in handlers[0].decorator_list}, module
        checked.append(path.stem)
    assert {"send_batch", "ingest_feedback"} <= set(checked), "the breaker's callers must be among them"


# ------------------------------------------------------------------------------ CampaignsHalted, once per campaign


def test_a_halt_emits_campaigns_halted_once_per_campaign(monkeypatch, capsys):
    from app import campaign_breaker
    from app.campaign_control import HALTED, RUNNING
    from app.domain.breaker import HALT, evaluate
    from app.domain.campaign import Thresholds
    from app.observability import metrics

    statuses = {"spring": RUNNING, "autumn": RUNNING}
    alerts = []

    def change_status(campaign_id, to, settings, details=None):  # the conditional write: RUNNING -> HALTED once
        if statuses.get(campaign_id) != RUNNING:
            return False
        statuses[campaign_id] = to
        return True

    monkeypatch.setattr(campaign_breaker, "change_status", change_status)
    monkeypatch.setattr(campaign_breaker, "alert", lambda settings, subject, message: alerts.append(subject))
    found = evaluate(2_000, 0, 20, Thresholds())
    assert found.level == HALT

    @metrics.log_metrics
    def invocation(event, context):
        return [campaign_breaker.halt(c, found, settings=None) for c in event]

    metrics.clear_metrics()
    capsys.readouterr()
    first = invocation(["spring", "spring", "autumn", "spring"], None)
    with pytest.warns(UserWarning, match="No application metrics"):  # both already HALTED: nothing to count
        second = invocation(["autumn", "spring"], None)

    assert first == [True, False, True, False] and second == [False, False]
    assert statuses == {"spring": HALTED, "autumn": HALTED} and len(alerts) == 2
    halted = []
    for line in capsys.readouterr().out.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if "_aws" in document and "CampaignsHalted" in document:
            (directive,) = document["_aws"]["CloudWatchMetrics"]
            assert directive["Namespace"] == NAMESPACE and ["service"] in directive["Dimensions"]
            assert document["service"] == SERVICE_DIMENSION[1]
            value = document["CampaignsHalted"]
            halted.extend(value if isinstance(value, list) else [value])
    assert sum(halted) == 2, f"one CampaignsHalted per campaign halted, got {halted}"


def test_the_dashboard_and_alarms_are_named_as_cloudformation_will_name_them():
    resolved = load_template(ROOT / "template.yaml", stack_name="sesflow-prod")

    assert resolved.resources["OperationsDashboard"].physical_id == "sesflow-prod-operations"
    assert resolved.outputs["DashboardName"] == "sesflow-prod-operations"
    alarm = resolved.resources["ComplaintRateHaltAlarm"]
    assert alarm.physical_id == "sesflow-prod-complaint-rate-halt"
