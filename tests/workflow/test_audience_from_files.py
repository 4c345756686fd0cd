"""A team's first week on the engine: its old provider's suppression list and its contacts file loaded through the
CLI's own import code, then a campaign. Nobody suppressed ahead of their contact gets an email; everyone else on
the list gets exactly one."""

import os
from collections import Counter

from sesflow import contacts_cli, suppression_cli
from sesflow.engine.ses import simulator
from sesflow.target import Target


def test_a_suppression_loaded_before_its_contact_keeps_it_out_of_the_campaign(stack, tmp_path):
    simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)
    people = tmp_path / "members.csv"
    people.write_text("Email Address,First Name\n" + "".join(f"user{i}@example.org,U{i}\n" for i in range(120))
                      + "Complained@Example.org,C\n\"Old Bounce\" <bounced@example.org>,B\n")
    suppressed = tmp_path / "old-provider-suppressions.csv"
    suppressed.write_text("email\ncomplained@example.org\nbounced@example.org\nnever.a.contact@example.org\n")
    target = Target(name="team", region=stack.region, outputs=stack.outputs)
    inside = dict(os.environ)
    try:
        loaded = suppression_cli.import_file(target, str(suppressed), "from the old provider", actor="operator:t")
        summary = contacts_cli.import_file(str(people), "news", contacts_cli._code(target), actor="operator:t")
    finally:
        os.environ.clear()
        os.environ.update(inside)
    assert len(loaded.created) == 3
    assert (summary["created"], summary["skipped"]["suppressed"]) == (120, 2)

    result = stack.run("CampaignStateMachine", {"id": "first-week", "sender": "news@example.com",
                                                "audience": {"lists": ["news"]},
                                                "variants": [{"name": "a", "subject": "Hi", "text": "Hello"}]})

    assert result.status == "SUCCEEDED"
    sent = Counter(r for message in simulator().outbox for r in message.to)
    assert set(sent) == {f"user{i}@example.org" for i in range(120)} and set(sent.values()) == {1}
