"""Machine opens and clicks: which SES Open and Click records a scanner or a privacy proxy made. Pure (no AWS)."""

import json

import pytest
from app.domain.engagement import MACHINE_SECONDS, counts_unique, is_machine
from app.domain.feedback import parse_feedback
from app.domain.feedback_apply import tally

SENT = "2017-08-09T21:59:49.927Z"
# SES's own example records (event-publishing-retrieving-sns-examples.html): a person on an iPhone opens 30 s after
# the send, a person in Chrome clicks 80 s after it.
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 10_3_3 like Mac OS X) AppleWebKit/603.3.8 (KHTML, like Gecko) "
          "Mobile/14G60")
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/60.0.3112.90 "
          "Safari/537.36")
GMAIL_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"


def event(kind="open", agent=IPHONE, at="2017-08-09T22:00:19.652Z", sent=SENT, variant="a"):
    """One Open or Click as SES publishes it, through the parser."""
    obj = {"ipAddress": "192.0.2.1", "userAgent": agent}
    if at is not None:
        obj["timestamp"] = at
    if agent is None:
        del obj["userAgent"]
    if kind == "click":
        obj.update(link="https://example.com/offer", linkTags={})
    mail = {"messageId": "m-1", "destination": ["reader@example.com"],
            "tags": {"campaign": ["c1"], "variant": [variant]}}
    if sent is not None:
        mail["timestamp"] = sent
    record = {"eventType": kind.capitalize(), "mail": mail, kind: obj}
    (parsed,) = parse_feedback(json.dumps(record)).events
    return parsed


def test_the_parser_keeps_what_the_classifier_reads():
    opened = event()
    assert opened.detail["userAgent"] == IPHONE and opened.sent_at == SENT
    assert opened.timestamp == "2017-08-09T22:00:19.652Z"
    assert "ipAddress" not in opened.detail  # personal data, not kept


@pytest.mark.parametrize("kind", ["open", "click"])
def test_a_person_is_not_a_machine(kind):
    # SES's example open (30 s after the send, an iPhone) and click (80 s, Chrome) are people's.
    assert is_machine(event(kind, IPHONE if kind == "open" else CHROME,
                            at="2017-08-09T22:00:19.652Z" if kind == "open" else "2017-08-09T22:01:09.927Z")) is None


def test_an_open_through_gmails_image_proxy_is_the_persons():
    # Gmail fetches the images when the recipient opens the message.
    assert is_machine(event(agent=GMAIL_PROXY)) is None


def test_apple_mail_privacy_protections_proxy_is_a_machine():
    assert is_machine(event(agent="Mozilla/5.0")) == "Apple Mail Privacy Protection's proxy (user agent Mozilla/5.0)"


@pytest.mark.parametrize(("agent", "token"), [
    ("Mozilla/5.0 (compatible; BarracudaCentral)", "barracuda"),
    ("Mimecast URL Protect", "mimecast"),
    ("Proofpoint URL Defense", "proofpoint"),
    ("python-requests/2.31.0", "python-requests"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 Safari/537.36",
     "headlesschrome"),
])
def test_a_scanner_that_names_itself_is_a_machine(agent, token):
    assert is_machine(event("click", agent)) == f"a scanner's user agent ({token})"


def test_a_click_seconds_after_the_send_is_a_machines_even_with_a_browsers_agent():
    assert is_machine(event("click", CHROME, at="2017-08-09T21:59:52.927Z")) == "3.0 s after the send (under 10 s)"
    assert is_machine(event("open", IPHONE, at="2017-08-09T21:59:50.927Z")) == "1.0 s after the send (under 10 s)"


def test_the_time_signal_ends_at_machine_seconds():
    assert MACHINE_SECONDS == 10.0
    assert is_machine(event("click", CHROME, at="2017-08-09T21:59:59.927Z")) is None  # exactly 10 s


def test_no_time_signal_without_both_times():
    # The open has no timestamp of its own: the parser gives it the send's, which says nothing of when it came.
    assert is_machine(event(at=None)) is None
    assert is_machine(event(sent=None)) is None
    assert is_machine(event(agent=None)) is None


def test_other_kinds_are_never_machines():
    record = {"eventType": "Delivery", "mail": {"messageId": "m-1", "timestamp": SENT,
                                                "destination": ["reader@example.com"]},
              "delivery": {"timestamp": SENT, "recipients": ["reader@example.com"]}}
    (delivered,) = parse_feedback(json.dumps(record)).events
    assert is_machine(delivered) is None


def test_machine_opens_and_clicks_count_on_their_own_never_as_a_persons():
    events = [event("open"), event("open", "Mozilla/5.0"), event("click", CHROME, at="2017-08-09T22:01:09.927Z"),
              event("click", "Barracuda Sentinel", variant="b"), event("click", CHROME, at="2017-08-09T21:59:51Z",
                                                                       variant="b")]
    assert tally(events)["c1"] == {"opens": 1, "opens#a": 1, "machine_opens": 1, "machine_opens#a": 1,
                                   "clicks": 1, "clicks#a": 1, "machine_clicks": 2, "machine_clicks#b": 2}


def test_unique_engagement_is_counted_while_a_test_then_winner_test_is_open():
    assert counts_unique({"ab": {"mode": "test_then_winner"}}, decided=False)
    assert not counts_unique({"ab": {"mode": "test_then_winner"}}, decided=True)
    assert not counts_unique({"ab": {"mode": "split"}}, decided=False)
    assert not counts_unique({}, decided=False)


def test_a_bandit_counts_unique_engagement_until_it_ends():
    assert counts_unique({"ab": {"mode": "bandit"}}, decided=False)
    assert counts_unique({"ab": {"mode": "bandit"}}, decided=False, ended=False)
    assert not counts_unique({"ab": {"mode": "bandit"}}, decided=False, ended=True)
