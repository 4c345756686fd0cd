"""`sesflow campaign plan FILE` (and `campaign start`, which runs it) against a stack on the engine: the numbers it
shows are what the snapshot then freezes, each problem is named and starts, writes and sends nothing."""

import json

import pytest

from sesflow.engine.ses import simulator
from tests.contacts import UNSUBSCRIBED, add_contact
from tests.functional.test_campaign_cli import run, target  # noqa: F401  (the same engine fixture)
from tests.workflow.test_campaign import campaign


def everything(stack) -> dict:
    """What the stack holds: every table's items, every bucket's objects, the SES outbox, the executions."""
    ddb, s3, sfn = stack.client("dynamodb"), stack.client("s3"), stack.client("stepfunctions")
    tables = {name: ddb.scan(TableName=name)["Items"] for name in ddb.list_tables()["TableNames"]}
    objects = {b["Name"]: [o["Key"] for o in s3.list_objects_v2(Bucket=b["Name"]).get("Contents", [])]
               for b in s3.list_buckets()["Buckets"]}
    executions = [e["executionArn"] for m in sfn.list_state_machines()["stateMachines"]
                  for e in sfn.list_executions(stateMachineArn=m["stateMachineArn"])["executions"]]
    return {"tables": tables, "objects": objects, "outbox": len(simulator().outbox), "executions": executions}


def write(tmp_path, definition) -> str:
    path = tmp_path / f"{definition['id']}.json"
    path.write_text(json.dumps(definition))
    return str(path)


def plan(path, capsys, **options):
    code = run("plan", file=path, json=True, **options)
    return code, json.loads(capsys.readouterr().out)


def lines(shown, level):
    return [f"{c['check']}: {c['message']}" for c in shown["checks"] if c["level"] == level]


@pytest.fixture
def mixed(stack, target):  # noqa: F811
    """Beyond the 120 ACTIVE subscribers: members left out for every reason the snapshot counts."""
    for i in range(3):
        add_contact(stack, f"gone{i}@example.org", ["newsletter"], status="SUPPRESSED")
        add_contact(stack, f"resting{i}@example.org", ["newsletter"], status="QUARANTINED")
        add_contact(stack, f"left{i}@example.org", {"newsletter": UNSUBSCRIBED})
        add_contact(stack, f"probation{i}@example.org", ["newsletter"], status="RECOVERY")
    add_contact(stack, "vip0@example.org", ["newsletter", "vips"])
    stack.client("sesv2").put_suppressed_destination(EmailAddress="user007@example.org", Reason="BOUNCE")
    return target


def test_a_good_plan_shows_per_variant_what_the_campaign_then_snapshots(stack, mixed, tmp_path, capsys):
    path = write(tmp_path, campaign(audience={"lists": ["newsletter"], "exclude_lists": ["vips"]}))
    before = everything(stack)

    code, shown = plan(path, capsys)

    assert code == 0 and shown["ok"], lines(shown, "problem")
    assert everything(stack) == before  # no item, no object, no message, no execution
    audience = shown["audience"]
    assert audience["left_out"] == {"excluded": 1, "quarantined": 3, "ses_suppressed": 1, "suppressed": 3,
                                    "unsubscribed": 3}
    assert {c["check"] for c in shown["checks"]} >= {"definition", "start_at", "sender", "configuration_set",
                                                     "account", "audience", "templates", "quota", "cost"}
    assert lines(shown, "warning") == []
    assert code == run("plan", file=path, json=False) == 0  # the text form: one line per check
    text = capsys.readouterr().out
    sent = {v: n for v, n in audience["by_variant"].items() if v != "holdout"}
    assert f"{audience['recipients']:,} recipients: a {sent['a']:,}, b {sent['b']:,}, c {sent['c']:,}; holdout " \
           f"{audience['holdout']:,}" in text
    assert "ok       templates          variant a: template spring-a renders for 20 sampled contacts" in text

    assert run("start", file=path) == 0
    stack.wait(capsys.readouterr().out.split()[-1])

    item = stack.client("dynamodb").get_item(TableName=stack.outputs["CampaignsTableName"],
                                             Key={"campaign_id": {"S": "spring-sale"}})["Item"]
    frozen = json.loads(item["audience"]["S"])
    assert (frozen["by_variant"], frozen["recipients"], frozen["holdout"], frozen["left_out"]) == (
        audience["by_variant"], audience["recipients"], audience["holdout"], audience["left_out"])
    assert len(simulator().outbox) == audience["recipients"]
    # The probation set is planned too: RECOVERY contacts go out through it.
    assert any(stack.outputs["ProbationConfigurationSetName"] in c["message"] for c in shown["checks"])


PROBLEMS = {
    "unknown stored template": (
        {"variants": [{"name": "a", "template": "spring-a"}, {"name": "b", "template": "no-such-template"}]},
        "variant b: SES template 'no-such-template' does not exist"),
    "a variable missing for a sampled contact": (
        {"id": "club-news", "audience": {"lists": ["club"]},
         "personalization": {"fields": ["profile"], "defaults": {"profile": {"city": "your town"}}},
         "variants": [{"name": "a", "subject": "News", "text": "Hello from {{profile.city}}"}]},
        "variant a: inline content, text does not render for contact nocity@example.org (1 of 3 sampled contacts): "
        "Attribute 'profile.city' is not present in the rendering data."),
    "unverified sender": (
        {"sender": "news@unverified.example.net"},
        "news@unverified.example.net is not verified in SES (us-east-1): no identity for the address or its domain"),
    "empty audience": (
        {"audience": {"lists": ["nobody-here"]}},
        "nobody to send to on nobody-here"),
    "past start_at": (
        {"start_at": "2020-01-01T09:00:00Z"},
        "start_at 2020-01-01T09:00:00Z is in the past"),
}


@pytest.mark.parametrize("case", sorted(PROBLEMS))
def test_each_problem_is_named_exits_1_and_nothing_starts(stack, target, tmp_path, capsys, case):  # noqa: F811
    for address, profile in (("city@example.org", {"city": "Lyon"}), ("nocity@example.org", {"town": "Lille"}),
                             ("other@example.org", {"city": "Nantes"})):
        add_contact(stack, address, ["club"], attributes={"profile": profile})
    changes, named = PROBLEMS[case]
    path = write(tmp_path, campaign(**changes))
    before = everything(stack)

    code, shown = plan(path, capsys)

    assert code == 1 and not shown["ok"]
    assert [p for p in lines(shown, "problem") if named in p], lines(shown, "problem")
    assert run("start", file=path) == 1
    assert named in capsys.readouterr().err
    assert everything(stack) == before  # nothing started, written or sent


def test_now_lets_a_past_start_at_go(stack, target, tmp_path, capsys):  # noqa: F811
    path = write(tmp_path, campaign(start_at="2020-01-01T09:00:00Z"))

    code, shown = plan(path, capsys, now=True)

    assert code == 0, lines(shown, "problem")
    assert "start_at: start_at 2020-01-01T09:00:00Z is past: starts at once (--now)" in lines(shown, "ok")
    assert run("start", file=path, now=True) == 0
    assert stack.wait(capsys.readouterr().out.split()[-1]).status == "SUCCEEDED"
    assert len(simulator().outbox) == shown["audience"]["recipients"] > 0


def test_a_quota_shortfall_warns_with_the_days_it_takes_and_the_sandbox_warns(stack, target, tmp_path,  # noqa: F811
                                                                             capsys):
    simulator().configure(max_24h_send=40, max_send_rate=2, production_access=False)
    path = write(tmp_path, campaign(rate_share=0.5))

    code, shown = plan(path, capsys)

    assert code == 0  # warnings start nothing by themselves, and stop nothing
    recipients = shown["audience"]["recipients"]
    days = 1 + -(-(recipients - 40) // 40)
    warnings = lines(shown, "warning")
    assert f"quota: the 24-hour quota left (40 of 40, 0 sent in the last 24 hours) is short of {recipients:,}: the " \
           f"governor spreads the send over about {days} days" in warnings
    assert any("the account is in the SES sandbox in us-east-1" in w for w in warnings)
    estimate = shown["estimate"]
    assert estimate["sends_per_second"] == pytest.approx(1 / 1.01, rel=1e-3)  # half of 2/s, per 1,010 ms window
    assert estimate["ses_usd"] == pytest.approx(recipients * 0.10 / 1000)
    assert estimate["days"] == days and not estimate["quota_suffices"]


def test_a_number_filter_on_text_attributes_warns_that_it_matches_nobody(stack, target, tmp_path,  # noqa: F811
                                                                          capsys):
    for i, age in enumerate(("30", "41", "30")):  # as a CSV import stores them
        add_contact(stack, f"member{i}@example.org", ["club"], attributes={"age": age})
    path = write(tmp_path, campaign(audience={"lists": ["club"], "filters": {"attributes": {"age": 30}}}))

    code, shown = plan(path, capsys)

    assert code == 1  # nobody matches: an empty audience
    assert "filters: audience.filters.attributes.age: compares number (30) but all 3 stored values of age are text " \
           "(e.g. '30'), so it matches nobody (a CSV import stores text: write the value as a string, e.g. \"30\" " \
           "rather than 30)" in lines(shown, "warning")
    assert shown["audience"]["left_out"] == {"filtered_out": 3}


def test_an_identity_not_yet_verified_is_a_problem(stack, target, tmp_path, capsys):  # noqa: F811
    from moto.sesv2.models import sesv2_backends

    from sesflow.engine.template import ACCOUNT_ID

    backend = sesv2_backends[ACCOUNT_ID][stack.region]
    backend.core_backend.email_identities["example.com"].verification_status = "PENDING"
    path = write(tmp_path, campaign())

    code, shown = plan(path, capsys)

    assert code == 1
    assert "sender: news@example.com: identity example.com is not verified for sending (VerificationStatus " \
           "PENDING): SES would refuse every message" in lines(shown, "problem")


def test_plan_start_and_test_take_the_same_target_options_as_the_other_commands():
    from sesflow.cli import build_parser

    parser = build_parser()
    where = ["--stack", "prod", "--region", "eu-west-1", "--state-file", "s.json"]
    planned = parser.parse_args(["campaign", "plan", "c.json", "--json", "--now", *where])
    started = parser.parse_args(["campaign", "start", "c.json", "--now", *where])
    tested = parser.parse_args(["campaign", "test", "c.json", "--to", "a@example.org,b@example.org",
                                "--as", "ada@example.org", *where])

    for args in (planned, started, tested):
        assert (args.stack, args.region, args.state_file, args.file) == ("prod", "eu-west-1", "s.json", "c.json")
    assert planned.json and planned.now and started.now
    assert (tested.to, tested.as_contact) == ("a@example.org,b@example.org", "ada@example.org")
    assert not parser.parse_args(["campaign", "start", "c.json"]).now


def test_a_sender_verified_as_an_address_without_dkim_warns_but_may_send(stack, target, tmp_path, capsys):  # noqa: F811
    stack.client("sesv2").create_email_identity(EmailIdentity="solo@other.example.net")
    path = write(tmp_path, campaign(sender="solo@other.example.net"))

    code, shown = plan(path, capsys)

    assert code == 0
    assert "sender: solo@other.example.net: verified by identity solo@other.example.net" in lines(shown, "ok")
    assert "sender: solo@other.example.net: DKIM is NOT_STARTED for solo@other.example.net: messages go out without " \
           "your domain's DKIM signature" in lines(shown, "warning")


def test_a_configuration_set_with_sending_paused_is_a_problem(stack, target, tmp_path, capsys):  # noqa: F811
    from moto.sesv2.models import sesv2_backends

    from sesflow.engine.template import ACCOUNT_ID

    name = stack.outputs["ConfigurationSetName"]
    sesv2_backends[ACCOUNT_ID][stack.region].core_backend.config_sets[name].enabled = {"SendingEnabled": False}
    path = write(tmp_path, campaign())

    code, shown = plan(path, capsys)

    assert code == 1
    assert f"configuration_set: {name}: sending is paused on it (SendingOptions.SendingEnabled false): SES would " \
           f"refuse its messages" in lines(shown, "problem")


def test_an_address_identity_under_a_dkim_verified_domain_does_not_warn(stack, target, tmp_path, capsys):  # noqa: F811
    stack.client("sesv2").create_email_identity(EmailIdentity="news@example.com")  # example.com: verified, DKIM
    path = write(tmp_path, campaign())

    code, shown = plan(path, capsys)

    assert code == 0 and lines(shown, "warning") == []
    assert "sender: news@example.com: verified by identity news@example.com" in lines(shown, "ok")


def test_the_plan_warns_of_a_marketing_template_without_a_visible_unsubscribe_link(stack, mixed, tmp_path, capsys):
    stack.client("sesv2").create_email_template(TemplateName="bare", TemplateContent={
        "Subject": "Spring", "Html": "<p>Hello{{#if first_name}} {{first_name}}{{/if}}</p>", "Text": "Hello"})
    path = write(tmp_path, campaign(variants=[{"name": "a", "template": "bare"}]))

    code, shown = plan(path, capsys)

    assert code == 0, lines(shown, "problem")  # SES would send it: a warning, not a problem
    warned = lines(shown, "warning")
    assert any("variant a: bare: html:" in w and "unsubscribe" in w for w in warned), warned
    assert any("variant a: bare: text:" in w and "unsubscribe" in w for w in warned), warned


def test_the_plan_shows_when_each_zone_is_first_sent_under_a_send_window(stack, target, tmp_path, capsys):  # noqa: F811
    """The 120 subscribers without a zone go in the campaign's (Paris), beside New York, Tokyo and an invalid zone:
    each zone's first opening from the start, in UTC and local time, in the order the snapshot sends them."""
    for i in range(3):
        add_contact(stack, f"ny{i}@example.org", ["newsletter"], attributes={"time_zone": "America/New_York"})
    for i in range(2):
        add_contact(stack, f"tokyo{i}@example.org", ["newsletter"], attributes={"time_zone": "Asia/Tokyo"})
    add_contact(stack, "lost@example.org", ["newsletter"], attributes={"time_zone": "Mars/Olympus"})
    window = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00",
              "time_zone": "Europe/Paris"}
    path = write(tmp_path, campaign(holdout_percent=0, start_at="2030-12-02T05:00:00Z", send_window=window))

    code, shown = plan(path, capsys)

    assert code == 0, lines(shown, "problem")
    line = next(c for c in shown["checks"] if c["check"] == "send_window")
    assert [(z["zone"], z["recipients"], z["opens_at"], z["local"]) for z in line["detail"]["zones"]] == [
        ("Asia/Tokyo", 2, "2030-12-02T05:00:00Z", "Mon 2030-12-02 14:00 +09:00"),  # open at the start
        ("Europe/Paris", 121, "2030-12-02T08:00:00Z", "Mon 2030-12-02 09:00 +01:00"),
        ("America/New_York", 3, "2030-12-02T14:00:00Z", "Mon 2030-12-02 09:00 -05:00")]
    assert line["detail"]["zone_defaulted"] == {"missing": 120, "invalid": 1}
    assert line["message"].startswith("mon-fri 09:00-18:00 local time: Asia/Tokyo 2 from 2030-12-02T05:00:00Z")
    assert "in the campaign's zone Europe/Paris: 1 with an invalid zone, 120 without a zone" in line["message"]
def test_a_bandit_plan_shows_its_rounds_and_counts_their_windows(stack, target, tmp_path, capsys):  # noqa: F811
    bandit = {"mode": "bandit", "rounds": 4, "round_seconds": 1800}
    path = write(tmp_path, campaign(ab=bandit))

    code, shown = plan(path, capsys)

    assert code == 0 and shown["ok"], lines(shown, "problem")
    rounds = shown["audience"]["phases"]
    assert list(rounds) == ["round-1", "round-2", "round-3", "round-4"]
    assert sum(rounds.values()) == shown["audience"]["recipients"]
    assert shown["estimate"]["waiting_seconds"] == 3 * 1800
    assert run("plan", file=path, json=False) == 0
    text = capsys.readouterr().out
    assert "4 rounds of " in text and "each later one reweighted toward the better variant" in text
    assert "plus the 1 h 30 min rounds' windows" in text
