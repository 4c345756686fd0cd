"""A property: whatever imports, bounces, complaints, unsubscribes and reinstates happen, in any order, no import
ever changes a contact's lifecycle status or sets an unsubscribed membership back to subscribed."""

import contextlib
import itertools
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sesflow.engine.stack import LocalStack
from tests.conftest import ROOT

ADDRESSES = ("ada@example.com", "bob@example.com", "cy@example.com")
OPERATIONS = st.lists(st.tuples(
    st.sampled_from(("import", "import", "hard_bounce", "soft_bounce", "complaint", "unsubscribe", "reinstate")),
    st.sampled_from(ADDRESSES), st.sampled_from(("a", "b"))), min_size=1, max_size=12)
_runs = itertools.count()


def test_no_sequence_of_imports_and_feedback_lets_an_import_undo_a_decision():
    saved = dict(os.environ)
    with LocalStack(template_path=ROOT / "template.yaml", ses_identities=("example.com",)) as stack:
        inside = dict(os.environ)
        try:
            _check(stack)
        finally:  # the stack's own environment back, for its exit to undo
            os.environ.clear()
            os.environ.update(inside)
    os.environ.clear()
    os.environ.update(saved)


def _check(stack):
    from sesflow.target import Target

    Target(name="property", region=stack.region, outputs=stack.outputs).apply_env()
    from app import clients, clock, contacts, imports, recipients
    from app.domain import lifecycle
    from app.domain.contact_file import ContactRow
    from app.domain.feedback import FeedbackEvent
    from app.settings import settings as read_settings

    clients.forget()
    config = read_settings()
    policy = lifecycle.load_policy()

    def state(prefix):
        found = contacts.read_contacts([prefix + a for a in ADDRESSES], config)
        status = {a: c.status for a, c in found.items()}
        lists = {(m.list_id, a): m.state for list_id in ("a", "b")
                 for a, m in contacts.read_memberships(list_id, status, config).items()}
        return status, lists

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(OPERATIONS)
    def run(operations):
        prefix = f"r{next(_runs)}."  # each example its own contacts: no reset between examples
        for kind, address, list_id in [("import", a, "a") for a in ADDRESSES] + operations:
            address = prefix + address
            now = clock.now()
            if kind == "import":
                before = state(prefix)
                rows = [ContactRow(address, {"seen": next(_runs)}, (2,))]  # a new value: the contact is written
                options = imports.Options(list_id=list_id, source="import:test.csv", actor="test")
                imports.import_rows(rows, options, config, now, reject=lambda problem: None)
                after = state(prefix)
                for known, status in before[0].items():
                    assert after[0][known] == status, f"{kind} changed {known}'s status"
                for key, subscription in before[1].items():
                    assert after[1][key] == subscription, f"{kind} changed membership {key}"
                for key in set(after[1]) - set(before[1]):
                    assert before[0].get(key[1]) != "SUPPRESSED", "an import put a suppressed contact on a list"
            elif kind in ("hard_bounce", "complaint", "soft_bounce"):  # as SES feedback decides them
                event = FeedbackEvent(
                    event_id=f"{kind}-{next(_runs)}", kind="bounce" if "bounce" in kind else "complaint",
                    recipient=address, bounce_type={"hard_bounce": "Permanent", "soft_bounce": "Transient"}.get(kind),
                    bounce_subtype="General" if "bounce" in kind else None, hard=kind == "hard_bounce",
                    complaint_type="abuse" if kind == "complaint" else None, message_id="m", campaign_id=None,
                    variant=None, timestamp=None, source="event_publishing", envelope="sqs")
                recipients.apply_decision(address, lambda s, t, event=event: lifecycle.decide(policy, s, event, t),
                                          config, event_id=event.event_id, actor="ses")
            elif kind == "unsubscribe":
                contacts.set_subscription(list_id, address, "UNSUBSCRIBED", reason="one click", source="test",
                                          actor="test", event_id=f"u-{now.timestamp()}", now=now, settings=config)
            elif kind == "reinstate":
                with contextlib.suppress(LookupError):
                    recipients.operator_change(address, "reinstate", "operator", config, actor="ops")

    run()
