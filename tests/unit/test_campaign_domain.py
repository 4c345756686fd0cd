"""The campaign definition and variant assignment, pure (no AWS)."""

import json
import re
from collections import Counter
from decimal import Decimal

import pytest
from app.domain.campaign import (
    HOLDOUT,
    MAX_DEFINITION_BYTES,
    REMAINDER,
    TEST,
    AbTest,
    Audience,
    Campaign,
    Levels,
    Thresholds,
    Variant,
    assign_variant,
    batches,
    cohort,
    interleave,
    matches_filters,
    parse_campaign,
)
from app.errors import CampaignDefinitionError
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT

VALID = {
    "id": "spring-sale",
    "sender": "news@example.com",
    "audience": {"list_id": "newsletter"},
    "variants": [{"name": "a", "weight": 60, "template": "t-a"}, {"name": "b", "weight": 40, "template": "t-b"}],
    "holdout_percent": 10,
}


def test_valid_definition_is_normalised():
    campaign = parse_campaign(VALID)
    assert campaign.id == "spring-sale"
    assert campaign.name == "spring-sale"
    assert [v.name for v in campaign.variants] == ["a", "b"]
    assert parse_campaign(campaign.to_dict()) == campaign


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": "has space"}, "id: 'has space' is not valid"),
        ({"sender": "not-an-address"}, "sender: 'not-an-address' is not valid"),
        ({"audience": None}, "audience: required"),
        ({"variants": []}, "variants: required, a non-empty list"),
        ({"variants": [{"name": "a", "weight": 0, "template": "t"}]}, "variants[0].weight: must be a number above 0"),
        ({"variants": [{"name": "a", "template": "t"}, {"name": "a", "template": "u"}]}, "name 'a' is used more"),
        ({"variants": [{"name": "holdout", "template": "t"}]}, "'holdout' is reserved"),
        ({"variants": [{"name": "a"}]}, "variants[0].template: required"),
        ({"holdout_percent": 100}, "holdout_percent: must be a number from 0 to below 100"),
        ({"start_at": "tomorrow"}, "start_at: 'tomorrow' is not a UTC time like 2026-12-01T09:00:00Z"),
        ({"start_at": "2026-12-01T09:00:00"}, "start_at: '2026-12-01T09:00:00' is not a UTC time"),
        ({"start_at": "2026-12-01 09:00:00Z"}, "start_at: '2026-12-01 09:00:00Z' is not a UTC time"),
        ({"start_at": "2026-12-01T09:00Z"}, "start_at: '2026-12-01T09:00Z' is not a UTC time"),
    ],
)
def test_bad_field_is_refused_with_its_path_when_invalid(change, message):
    with pytest.raises(CampaignDefinitionError, match=None) as raised:
        parse_campaign({**VALID, **change})
    assert message in str(raised.value)


def test_every_bad_field_is_reported_at_once():
    with pytest.raises(CampaignDefinitionError) as raised:
        parse_campaign({"id": "", "variants": "x"})
    text = str(raised.value)
    for path in ("id:", "sender:", "audience:", "variants:"):
        assert path in text


STACK_SETS = frozenset({"sesflow-ConfigurationSet", "sesflow-Probation", "marketing-events"})


def test_configuration_set_is_refused_naming_the_allowed_sets_when_the_stack_may_not_send_through_it():
    with pytest.raises(CampaignDefinitionError) as raised:
        parse_campaign({**VALID, "configuration_set": "someone-elses"}, allowed_configuration_sets=STACK_SETS)
    text = str(raised.value)
    assert text.startswith("configuration_set: 'someone-elses' is not a configuration set this stack may send")
    assert "allowed: 'marketing-events', 'sesflow-ConfigurationSet', 'sesflow-Probation'" in text
    assert "AllowedConfigurationSets" in text


def test_configuration_set_is_accepted_when_the_stack_may_send_through_it():
    campaign = parse_campaign({**VALID, "configuration_set": "marketing-events"}, allowed_configuration_sets=STACK_SETS)
    assert campaign.configuration_set == "marketing-events"


def test_no_configuration_set_is_accepted_when_the_stack_allows_none_of_its_own():
    assert parse_campaign(VALID, allowed_configuration_sets=frozenset()).configuration_set is None


def test_configuration_set_is_refused_with_other_problems_at_once_when_not_allowed():
    with pytest.raises(CampaignDefinitionError) as raised:
        parse_campaign({**VALID, "id": "", "configuration_set": "x"}, allowed_configuration_sets=frozenset())
    assert "id:" in str(raised.value) and "configuration_set: 'x' is not a configuration set" in str(raised.value)
    assert "(allowed: none)" in str(raised.value)


def test_variant_is_stable_for_the_same_campaign_and_address():
    campaign = parse_campaign(VALID)
    first = [assign_variant(campaign, f"user{i}@example.com") for i in range(500)]
    again = [assign_variant(campaign, f"user{i}@example.com") for i in range(500)]
    assert first == again


def test_variants_follow_weights_and_holdout_when_audience_is_large():
    campaign = parse_campaign(VALID)
    counts = Counter(assign_variant(campaign, f"user{i}@example.com") for i in range(20_000))
    assert abs(counts[HOLDOUT] / 20_000 - 0.10) < 0.01
    assert abs(counts["a"] / 20_000 - 0.54) < 0.015  # 60% of the 90% not held out
    assert abs(counts["b"] / 20_000 - 0.36) < 0.015


def test_another_campaign_shuffles_recipients_independently():
    a = parse_campaign(VALID)
    b = parse_campaign({**VALID, "id": "summer-sale"})
    same = sum(assign_variant(a, f"u{i}@x.io") == assign_variant(b, f"u{i}@x.io") for i in range(2_000))
    assert same < 2_000 * 0.6  # independent draws agree about 0.1^2 + 0.54^2 + 0.36^2 = 43% of the time



# ---------------------------------------------------------------- issue 5: the full definition

TEST_THEN_WINNER = {**VALID, "ab": {"mode": "test_then_winner"}}


def refused(definition) -> str:
    with pytest.raises(CampaignDefinitionError) as raised:
        parse_campaign(definition)
    return str(raised.value)


def test_defaults_are_explicit_in_the_normalised_definition():
    document = parse_campaign(VALID).to_dict()
    assert document["configuration_set"] is None  # the stack's
    assert document["stream"] == "marketing"
    assert document["audience"] == {"lists": ["newsletter"], "exclude_lists": [], "filters": {"attributes": {}}}
    assert document["ab"] == {"mode": "split"}
    assert document["thresholds"] == {"bounce": {"warn": 0.02, "halt": 0.04},
                                      "complaint": {"warn": 0.0005, "halt": 0.0008},
                                      "min_sends": 500, "confidence": 0.95}
    assert document["rate_share"] == 1.0
    assert document["start_at"] is None


def test_test_then_winner_takes_its_defaults():
    ab = parse_campaign(TEST_THEN_WINNER).ab
    assert ab == AbTest("test_then_winner", 20.0, 14_400, "click", 500, 0.95, "send_control")


def test_every_field_given_round_trips():
    full = {
        "id": "full", "name": "Everything", "sender": "a@example.com", "configuration_set": "cs_1",
        "stream": "marketing",
        "audience": {"list_id": "l", "filters": {"attributes": {"region": ["eu", "uk"], "tier": 3, "vip": True}}},
        "variants": [{"name": "a", "weight": 2, "template": "t"},
                     {"name": "b", "subject": "Hi", "html": "<p>hi</p>"},
                     {"name": "c", "subject": "Hi", "text": "hi"}],
        "holdout_percent": 2.5,
        "ab": {"mode": "test_then_winner", "test_percent": 10, "evaluation_seconds": 3600, "metric": "open",
               "min_sample_per_variant": 1000, "confidence": 0.99, "no_winner": "stop"},
        "thresholds": {"bounce": {"warn": 0.01, "halt": 0.03}, "complaint": {"warn": 0.0003, "halt": 0.0006},
                       "min_sends": 2000, "confidence": 0.9},
        "rate_share": 0.25,
        "start_at": "2026-12-01T09:00:00Z",
    }
    campaign = parse_campaign(full)
    assert campaign.thresholds == Thresholds(Levels(0.01, 0.03), Levels(0.0003, 0.0006), 2000, 0.9)
    assert campaign.audience.attributes == (("region", ("eu", "uk")), ("tier", (3,)), ("vip", (True,)))
    assert campaign.variants[1] == Variant("b", 1.0, None, "Hi", "<p>hi</p>", None)
    assert parse_campaign(campaign.to_dict()) == campaign
    assert parse_campaign(json.loads(json.dumps(campaign.to_dict()))) == campaign


@settings(max_examples=60, deadline=None)
@given(
    holdout=st.floats(0, 99.9),
    test_percent=st.floats(0.01, 99.99),
    seconds=st.integers(60, 10**6),
    min_sample=st.integers(1, 10**6),
    confidence=st.floats(0.5, 0.999),
    share=st.floats(0.001, 1.0),
    warn=st.floats(0.0001, 0.5),
)
def test_round_trip_holds_for_any_valid_numbers(holdout, test_percent, seconds, min_sample, confidence, share, warn):
    campaign = parse_campaign({**VALID, "holdout_percent": holdout, "rate_share": share,
                               "ab": {"mode": "test_then_winner", "test_percent": test_percent,
                                      "evaluation_seconds": seconds, "min_sample_per_variant": min_sample,
                                      "confidence": confidence},
                               "thresholds": {"bounce": {"warn": warn, "halt": warn * 1.5}}})
    assert parse_campaign(campaign.to_dict()) == campaign


def test_whole_numbers_written_as_floats_pass():
    # JSON tools (and JSONata) may write 500 as 500.0.
    campaign = parse_campaign({**TEST_THEN_WINNER, "ab": {"mode": "test_then_winner", "min_sample_per_variant": 500.0,
                                                          "evaluation_seconds": 3600.0}})
    assert campaign.ab.min_sample_per_variant == 500 and isinstance(campaign.ab.min_sample_per_variant, int)


def test_a_comment_is_allowed_and_dropped():
    campaign = parse_campaign({**VALID, "$comment": "for people"})
    assert "$comment" not in campaign.to_dict()


def test_a_campaign_built_with_only_the_required_fields_round_trips():
    campaign = Campaign("c", "c", "a@example.com", (Variant("a", 1.0, "t"),), 0.0, None, audience=Audience(("l",)))
    assert campaign.audience.lists == ("l",) and campaign.ab.mode == "split"
    assert parse_campaign(campaign.to_dict()) == campaign


def test_list_id_is_one_list_and_lists_several_once_each():
    assert parse_campaign({**VALID, "audience": {"list_id": "l"}}).audience.lists == ("l",)
    both = parse_campaign({**VALID, "audience": {"lists": ["a", "b"], "exclude_lists": ["x"]}}).audience
    assert both.lists == ("a", "b") and both.exclude_lists == ("x",)


@pytest.mark.parametrize("audience, message", [
    ({"lists": []}, "audience.lists: must be a non-empty list of list names, got []"),
    ({"lists": ["a", "a"]}, "audience.lists[1]: 'a' is given twice"),
    ({"lists": ["a b"]}, "audience.lists[0]: must be a list name"),
    ({"lists": ["a"], "list_id": "a"}, "audience.list_id: give lists or list_id, not both"),
    ({"lists": ["a"], "exclude_lists": ["a"]}, "audience.exclude_lists: 'a' is also in lists"),
    ({}, "audience.lists: required"),
])
def test_a_bad_audience_is_refused_naming_the_field(audience, message):
    with pytest.raises(CampaignDefinitionError) as raised:
        parse_campaign({**VALID, "audience": audience})
    assert message in str(raised.value)


BAD = [
    # unknown fields, by name, with a hint
    ({"thresold": {}}, "thresold: unknown field (did you mean 'thresholds'?)"),
    ({"colour": "red"}, "colour: unknown field (known: id, name"),
    ({"thresholds": {"bounce": {"halts": 0.1}}}, "thresholds.bounce.halts: unknown field (did you mean 'halt'?)"),
    ({"audience": {"list_id": "l", "segment": "x"}}, "audience.segment: unknown field"),
    ({"variants": [{"name": "a", "template": "t", "wieght": 2}]},
     "variants[0].wieght: unknown field (did you mean 'weight'?)"),
    ({"ab": {"mode": "test_then_winner", "metrc": "open"}}, "ab.metrc: unknown field (did you mean 'metric'?)"),
    # name, configuration set, stream
    ({"name": ""}, "name: must be a non-empty string, got ''"),
    ({"name": 7}, "name: must be a non-empty string, got 7"),
    ({"configuration_set": "has space"}, "configuration_set: 'has space' is not valid"),
    ({"configuration_set": ""}, "configuration_set: must be a non-empty string"),
    ({"stream": "bulk"}, "stream: must be one of 'marketing', 'transactional', got 'bulk'"),
    # audience
    ({"audience": "newsletter"}, "audience: must be an object, got 'newsletter'"),
    ({"audience": {"list_id": "l", "filters": {"attributes": []}}}, "audience.filters.attributes: must be an object"),
    ({"audience": {"list_id": "l", "filters": {"tags": {}}}}, "audience.filters.tags: unknown field"),
    ({"audience": {"list_id": "l", "filters": {"attributes": {"status": "ACTIVE"}}}},
     "audience.filters.attributes.status: sesflow's own field"),
    ({"audience": {"list_id": "l", "filters": {"attributes": {"region": []}}}},
     "audience.filters.attributes.region: must be a string, number or boolean, or a non-empty list of them"),
    ({"audience": {"list_id": "l", "filters": {"attributes": {"region": {"in": "eu"}}}}},
     "audience.filters.attributes.region: must be a string"),
    ({"audience": {"list_id": "l", "filters": {"attributes": {"a b": "x"}}}},
     "audience.filters.attributes.a b: not a valid attribute name"),
    # variant content: exactly one form
    ({"variants": [{"name": "a", "template": "t", "subject": "s", "html": "h"}]},
     "variants[0]: give either template or inline subject/html/text, not both (has template and subject, html)"),
    ({"variants": [{"name": "a", "html": "<p>x</p>"}]}, "variants[0].subject: required for an inline variant"),
    ({"variants": [{"name": "a", "subject": "s"}]}, "variants[0]: an inline variant needs html, text or both"),
    ({"variants": [{"name": "a", "subject": "", "text": "t"}]}, "variants[0].subject: required, a non-empty string"),
    ({"variants": [{"name": "a", "subject": "s", "text": 3}]}, "variants[0].text: must be a non-empty string"),
    ({"variants": [{"name": "a", "template": ""}]}, "variants[0].template: required, a non-empty string"),
    ({"variants": [{"name": "a"}]}, "variants[0].template: required: an SES template name, or inline subject"),
    ({"variants": [{"name": "a", "weight": True, "template": "t"}]}, "variants[0].weight: must be a number above 0"),
    ({"variants": [{"name": "a", "weight": float("inf"), "template": "t"}]}, "variants[0].weight: must be a number"),
    # holdout
    ({"holdout_percent": -1}, "holdout_percent: must be a number from 0 to below 100, got -1"),
    ({"holdout_percent": "10"}, "holdout_percent: must be a number from 0 to below 100, got '10'"),
    # ab
    ({"ab": "split"}, "ab: must be an object, got 'split'"),
    ({"ab": {"mode": "epsilon_greedy"}},
     "ab.mode: must be one of 'split', 'test_then_winner', 'bandit', got 'epsilon_greedy'"),
    ({"ab": {"test_percent": 20}}, "ab.test_percent: only for mode 'test_then_winner'"),
    ({"ab": {"mode": "test_then_winner"}, "variants": [{"name": "a", "template": "t"}]},
     "ab.mode: test_then_winner needs at least 2 variants, got 1"),
    ({"ab": {"mode": "test_then_winner", "test_percent": 0}}, "ab.test_percent: must be a number above 0 and below"),
    ({"ab": {"mode": "test_then_winner", "test_percent": 100}}, "ab.test_percent: must be a number above 0"),
    ({"ab": {"mode": "test_then_winner", "evaluation_seconds": 59}},
     "ab.evaluation_seconds: must be a whole number from 60 to 31536000, got 59"),
    ({"ab": {"mode": "test_then_winner", "evaluation_seconds": 90.5}}, "ab.evaluation_seconds: must be a whole"),
    ({"ab": {"mode": "test_then_winner", "metric": "conversion"}},
     "ab.metric: must be one of 'open', 'click', got 'conversion'"),
    ({"ab": {"mode": "test_then_winner", "min_sample_per_variant": 0}},
     "ab.min_sample_per_variant: must be a whole number of at least 1, got 0"),
    ({"ab": {"mode": "test_then_winner", "confidence": 0.4}}, "ab.confidence: must be a number from 0.5 to 0.999"),
    ({"ab": {"mode": "test_then_winner", "confidence": 1}}, "ab.confidence: must be a number from 0.5 to 0.999"),
    ({"ab": {"mode": "test_then_winner", "no_winner": "random"}},
     "ab.no_winner: must be one of 'send_control', 'split', 'stop', got 'random'"),
    ({"ab": {"mode": "test_then_winner", "rounds": 3}}, "ab.rounds: only for mode 'bandit'"),
    ({"ab": {"metric": "click"}}, "ab.metric: only for mode 'test_then_winner' or 'bandit'"),
    # bandit
    ({"ab": {"mode": "bandit"}, "variants": [{"name": "a", "template": "t"}]},
     "ab.mode: bandit needs at least 2 variants, got 1"),
    ({"ab": {"mode": "bandit", "test_percent": 20}}, "ab.test_percent: only for mode 'test_then_winner'"),
    ({"ab": {"mode": "bandit", "no_winner": "stop"}}, "ab.no_winner: only for mode 'test_then_winner'"),
    ({"ab": {"mode": "bandit", "rounds": 1}}, "ab.rounds: must be a whole number from 2 to 20, got 1"),
    ({"ab": {"mode": "bandit", "rounds": 21}}, "ab.rounds: must be a whole number from 2 to 20, got 21"),
    ({"ab": {"mode": "bandit", "round_seconds": 30}},
     "ab.round_seconds: must be a whole number from 60 to 31536000, got 30"),
    ({"ab": {"mode": "bandit", "metric": "revenue"}}, "ab.metric: must be one of 'open', 'click', got 'revenue'"),
    ({"ab": {"mode": "bandit", "min_share": -0.1}},
     "ab.min_share: must be a fraction from 0 to below 1 / variants (0.5 for 2), got -0.1"),
    ({"ab": {"mode": "bandit", "min_share": 0.5}},
     "ab.min_share: must be a fraction from 0 to below 1 / variants (0.5 for 2), got 0.5"),
    # thresholds
    ({"thresholds": {"bounce": {"warn": 0.05, "halt": 0.04}}}, "thresholds.bounce: warn (0.05) must be below halt"),
    ({"thresholds": {"complaint": {"halt": 0.0004}}},
     "thresholds.complaint: warn (0.0005) must be below halt (0.0004)"),
    ({"thresholds": {"bounce": {"halt": 4}}}, "thresholds.bounce.halt: must be a fraction above 0 and below 1"),
    ({"thresholds": {"complaint": {"warn": 0}}}, "thresholds.complaint.warn: must be a fraction above 0"),
    ({"thresholds": {"min_sends": 0}}, "thresholds.min_sends: must be a whole number of at least 1, got 0"),
    ({"thresholds": {"confidence": 0.9999}}, "thresholds.confidence: must be a number from 0.5 to 0.999"),
    ({"thresholds": []}, "thresholds: must be an object, got []"),
    # rate share
    ({"rate_share": 0}, "rate_share: must be a fraction above 0 and at most 1, got 0"),
    ({"rate_share": 1.5}, "rate_share: must be a fraction above 0 and at most 1, got 1.5"),
    # transactional mail is owed to everyone, now
    ({"stream": "transactional"}, "holdout_percent: must be 0 for a transactional campaign"),
    ({"stream": "transactional", "holdout_percent": 0, "ab": {"mode": "test_then_winner"}},
     "ab.mode: test_then_winner holds the remainder back"),
    ({"stream": "transactional", "holdout_percent": 0, "ab": {"mode": "bandit"}},
     "ab.mode: bandit holds later rounds back"),
    # personalization
    ({"personalization": {"fields": ["first_name"]}},
     "personalization.fields[0]: 'first_name' needs a non-blank value in personalization.defaults"),
    ({"personalization": {"fields": ["first_name"], "defaults": {"first_name": " "}}},
     "personalization.fields[0]: 'first_name' needs a non-blank value"),
    ({"personalization": {"fields": ["episode_token"], "defaults": {"episode_token": "x"}}},
     "personalization.fields[0]: 'episode_token' is sesflow's bookkeeping, not template data"),
    ({"personalization": {"fields": ["a", "a"], "defaults": {"a": "x"}}},
     "personalization.fields[1]: 'a' is listed more than once"),
    ({"personalization": {"fields": ["first name"], "defaults": {}}},
     "personalization.fields[0]: not a valid attribute name: 'first name'"),
    ({"personalization": {"fields": "first_name"}}, "personalization.fields: must be a list of recipient attribute"),
    ({"personalization": {"defaults": ["there"]}}, "personalization.defaults: must be an object"),
    ({"personalization": {"feilds": []}}, "personalization.feilds: unknown field (did you mean 'fields'?)"),
    ({"personalization": {"fields": [f"f{i}" for i in range(51)], "defaults": {f"f{i}": "x" for i in range(51)}}},
     "personalization.fields: at most 50 attributes, got 51"),
]


@pytest.mark.parametrize(("change", "message"), BAD, ids=[m.split(":")[0] + f"-{i}" for i, (_, m) in enumerate(BAD)])
def test_bad_issue_5_field_is_refused_with_its_path(change, message):
    problems = refused({**VALID, **change}).split("; ")
    assert any(p.startswith(message) for p in problems), problems


def test_a_definition_too_big_for_the_workflow_is_refused():
    body = "x" * MAX_DEFINITION_BYTES
    text = refused({**VALID, "variants": [{"name": "a", "subject": "s", "html": body}]})
    assert text.startswith("campaign: ") and "put large bodies in an SES template" in text


def test_problems_in_new_and_old_fields_are_reported_together():
    text = refused({**VALID, "sender": "x", "rate_share": 2, "thresold": 1, "ab": {"mode": "nope"}})
    assert ";" not in text.replace("; ", "")  # "; " only between problems
    assert [p.split(":")[0] for p in text.split("; ")] == ["thresold", "sender", "ab.mode", "rate_share"]


def test_ses_content_for_a_template_and_for_inline_content():
    campaign = parse_campaign({**VALID, "variants": [{"name": "a", "template": "t-a"},
                                                     {"name": "b", "subject": "S", "text": "T"}]})
    a, b = campaign.variants
    assert not a.inline and b.inline
    assert a.ses_content() == {"Template": {"TemplateName": "t-a", "TemplateData": "{}"}}
    assert b.ses_content() == {"Template": {"TemplateContent": {"Subject": "S", "Text": "T"}, "TemplateData": "{}"}}


def test_template_data_is_the_defaults_with_each_recipients_own_non_blank_values_over_them():
    campaign = parse_campaign({**VALID, "personalization": {
        "fields": ["first_name", "visits", "tags"],
        "defaults": {"first_name": "there", "visits": 0, "tags": [], "sale_ends": "Sunday"}}})

    assert campaign.personalization.template_data({}) == {"first_name": "there", "visits": 0, "tags": [],
                                                          "sale_ends": "Sunday"}
    assert campaign.personalization.template_data(
        {"first_name": "Ada", "visits": Decimal("3"), "tags": {"b", "a"}, "sale_ends": "never", "plan": "pro"},
    ) == {"first_name": "Ada", "visits": 3, "tags": ["a", "b"], "sale_ends": "Sunday"}  # only the listed fields
    assert campaign.personalization.template_data({"first_name": "  ", "visits": Decimal("2.5")})["first_name"] \
        == "there"
    assert parse_campaign(campaign.to_dict()) == campaign
    assert json.loads(campaign.variants[0].ses_content(campaign.personalization.defaults)["Template"]
                      ["TemplateData"])["sale_ends"] == "Sunday"


FILTERED = {**VALID, "audience": {"list_id": "newsletter",
                                  "filters": {"attributes": {"region": ["eu", "uk"], "tier": 2, "vip": True}}}}


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"region": "eu", "tier": Decimal("2"), "vip": True}, True),  # DynamoDB numbers are Decimal
        ({"region": "uk", "tier": 2, "vip": True}, True),
        ({"region": {"fr", "eu"}, "tier": 2, "vip": True}, True),  # a string set matches when any element does
        ({"region": "fr", "tier": 2, "vip": True}, False),
        ({"tier": 2, "vip": True}, False),  # missing attribute
        ({"region": "eu", "tier": "2", "vip": True}, False),  # "2" is not 2
        ({"region": "eu", "tier": 2, "vip": 1}, False),  # 1 is not True
        ({"region": "EU", "tier": 2, "vip": True}, False),  # exact, case and all
    ],
)
def test_audience_filters_match_item_attributes(item, expected):
    assert matches_filters(parse_campaign(FILTERED), {"address": "a@x.io", **item}) is expected


def test_no_filters_match_everyone():
    assert matches_filters(parse_campaign(VALID), {"address": "a@x.io"})


def test_cohort_is_stable_and_sized_by_test_percent():
    campaign = parse_campaign({**TEST_THEN_WINNER, "ab": {"mode": "test_then_winner", "test_percent": 30}})
    cohorts = [cohort(campaign, f"user{i}@example.com") for i in range(20_000)]
    assert cohorts == [cohort(campaign, f"user{i}@example.com") for i in range(20_000)]
    assert set(cohorts) == {TEST, REMAINDER}
    assert abs(cohorts.count(TEST) / 20_000 - 0.30) < 0.015


def test_cohort_is_independent_of_the_variant():
    campaign = parse_campaign(TEST_THEN_WINNER)  # a 60 / b 40, 10% holdout, test 20%
    pairs = [(assign_variant(campaign, f"u{i}@x.io"), cohort(campaign, f"u{i}@x.io")) for i in range(40_000)]
    counts = Counter(pairs)
    for variant in ("a", "b"):
        in_test = counts[(variant, TEST)] / (counts[(variant, TEST)] + counts[(variant, REMAINDER)])
        assert abs(in_test - 0.20) < 0.015, variant  # each variant's share in the test cohort is the test percent
    test_a = counts[("a", TEST)] / (counts[("a", TEST)] + counts[("b", TEST)])
    assert abs(test_a - 0.60) < 0.02  # and the test cohort is split by the weights


def test_split_mode_has_no_remainder():
    campaign = parse_campaign(VALID)
    assert {cohort(campaign, f"u{i}@x.io") for i in range(1_000)} == {TEST}


EXAMPLES = sorted((ROOT / "events" / "campaign").glob("*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_each_example_campaign_parses_and_round_trips(path):
    campaign = parse_campaign(json.loads(path.read_text()))
    assert parse_campaign(json.loads(json.dumps(campaign.to_dict()))) == campaign


def test_examples_show_each_mode_and_stream():
    campaigns = [parse_campaign(json.loads(p.read_text())) for p in EXAMPLES]
    assert {c.ab.mode for c in campaigns} == {"split", "test_then_winner", "bandit"}
    assert {c.stream for c in campaigns} == {"marketing", "transactional"}
    assert any(v.inline for c in campaigns for v in c.variants)


SCHEMA_DOC = ROOT / "docs" / "campaign-schema.md"


def test_each_json_example_in_the_schema_doc_parses():
    blocks = re.findall(r"```json\n(.*?)```", SCHEMA_DOC.read_text(), re.S)
    assert blocks
    for block in blocks:
        parse_campaign(json.loads(block))


def test_the_schema_doc_names_every_field():
    def paths(value, prefix=""):
        if isinstance(value, dict):
            for key, inner in value.items():
                yield f"{prefix}{key}"
                yield from paths(inner, f"{prefix}{key}.")

    document = parse_campaign({**json.loads((ROOT / "events/campaign/newsletter_test_then_winner.json").read_text())})
    text = SCHEMA_DOC.read_text()
    names = [p for p in paths(document.to_dict()) if not p.startswith("audience.filters.attributes.")]
    names += ["variants[].name", "variants[].weight", "variants[].template", "variants[].subject",
              "variants[].html", "variants[].text"]
    missing = [p for p in names if f"`{p}`" not in text]
    assert not missing, f"docs/campaign-schema.md does not document {missing}"


# ------------------------------------------------------------------------------------------------ interleave


def _runs(sizes: dict[str, int], batch: int = 50) -> list[list[list[str]]]:
    return [batches([name] * size, batch) for name, size in sizes.items()]


@pytest.mark.parametrize("sizes", [{"a": 5000, "b": 5000}, {"a": 9000, "b": 1000}, {"a": 700, "b": 2000, "c": 333},
                                   {"a": 49, "b": 5000}, {"a": 1, "b": 1, "c": 1}])
def test_every_variant_has_its_share_within_one_batch_at_every_point_of_the_send(sizes):
    order = interleave(_runs(sizes))
    total = sum(sizes.values())
    sent = {name: 0 for name in sizes}
    for batch in order:
        assert len(set(batch)) == 1  # one variant per batch: no extra SES call
        sent[batch[0]] += len(batch)
        so_far = sum(sent.values())
        for name, size in sizes.items():
            assert abs(sent[name] - so_far * size / total) <= 50
    assert sent == sizes


def test_interleaving_keeps_each_variants_own_batch_order():
    runs = [[["a1"], ["a2"], ["a3"]], [["b1"], ["b2"]]]
    order = [batch[0] for batch in interleave(runs)]
    assert [b for b in order if b.startswith("a")] == ["a1", "a2", "a3"]
    assert [b for b in order if b.startswith("b")] == ["b1", "b2"]
    assert order[0] == "a1"  # a tie keeps the variants' order

# ------------------------------------------------------------------ sender display name and reply-to

def test_a_display_name_in_the_sender_or_in_from_name_reaches_ses_as_one_from_header():
    from email.header import decode_header, make_header

    inline = parse_campaign({**VALID, "sender": "Zoë Café <news@example.com>"})
    apart = parse_campaign({**VALID, "sender": "news@example.com", "from_name": "Zoë Café"})
    assert (inline.sender, inline.from_name) == (apart.sender, apart.from_name) == ("news@example.com", "Zoë Café")
    header = inline.from_header
    assert header.isascii() and header.endswith(" <news@example.com>")
    assert str(make_header(decode_header(header))) == "Zoë Café <news@example.com>"
    assert parse_campaign({**VALID, "sender": '"Smith, Jo" <news@example.com>'}).from_header == \
        '"Smith, Jo" <news@example.com>'  # an ASCII name, quoted where RFC 5322 needs it
    assert parse_campaign(inline.to_dict()) == inline and parse_campaign(VALID).from_header == "news@example.com"


def test_a_long_non_ascii_display_name_is_split_into_encoded_words_of_at_most_75_characters():
    name = "Überraschungsangebote für alle Abonnentinnen und Abonnenten"
    header = parse_campaign({**VALID, "from_name": name}).from_header
    words = header.rsplit(" <", 1)[0].split(" ")
    assert len(words) > 1 and all(len(w) <= 75 and w.startswith("=?utf-8?b?") for w in words)


def test_reply_to_takes_one_address_or_a_list_and_encodes_display_names_for_ses():
    one = parse_campaign({**VALID, "reply_to": "help@example.com"})
    many = parse_campaign({**VALID, "reply_to": ["Équipe <team@example.com>", "help@example.com"]})
    assert one.reply_to_addresses == ["help@example.com"]
    assert many.reply_to_addresses[0].startswith("=?utf-8?b?") and many.reply_to_addresses[1] == "help@example.com"
    assert parse_campaign(many.to_dict()) == many and parse_campaign(VALID).reply_to == ()


@pytest.mark.parametrize(("change", "message"), [
    ({"sender": "News <news>"}, "sender: 'News <news>' is not valid"),
    ({"sender": "zoë@example.com"}, "sender: 'zoë@example.com': an address must be 7-bit ASCII"),
    ({"sender": "News <news@example.com>", "from_name": "Other"},
     "from_name: the sender already has a display name ('News'): give it in sender or in from_name, not both"),
    ({"from_name": "News\r\nBcc: all@example.com"}, "from_name: the display name 'News\\r\\nBcc: all@example.com' "
                                                    "holds a control character or a line break"),
    ({"from_name": "é" * 400}, "from_name: the display name is too long"),
    ({"from_name": 3}, "from_name: must be a non-empty string, got 3"),
    ({"reply_to": {"a": 1}}, "reply_to: must be an address or a list of addresses, got {'a': 1}"),
    ({"reply_to": ["help@example.com", "nobody"]}, "reply_to[1]: 'nobody' is not valid"),
    ({"reply_to": "Help <hélp@example.com>"}, "reply_to: 'hélp@example.com': an address must be 7-bit ASCII"),
], ids=["no domain", "non-ascii address", "two names", "header injection", "too long", "not text",
        "not a list", "bad entry", "non-ascii reply-to"])
def test_a_bad_sender_name_or_reply_to_is_refused_naming_the_field(change, message):
    with pytest.raises(CampaignDefinitionError) as raised:
        parse_campaign({**VALID, **change})
    assert message in str(raised.value)


# ------------------------------------------------------------------ what a resume may change

def test_a_resume_may_change_the_thresholds_and_the_rate_share_only():
    from app.domain.campaign import RESUME_MAY_CHANGE, check_resume, resume_changes

    stored = parse_campaign(VALID).to_dict()
    raised = parse_campaign({**VALID, "thresholds": {"complaint": {"warn": 0.01, "halt": 0.02}}, "rate_share": 0.5,
                             "$comment": "raised after the spike"})
    assert RESUME_MAY_CHANGE == ("thresholds", "rate_share")
    assert resume_changes(stored, raised) == []
    check_resume(stored, raised)  # nothing to refuse
    assert resume_changes(stored, parse_campaign({**VALID, "holdout_percent": 10.0})) == []  # 10 is 10.0
    changed = parse_campaign({**VALID, "audience": {"lists": ["customers"]}, "holdout_percent": 5,
                              "variants": [{"name": "a", "weight": 60, "template": "t-a"},
                                           {"name": "b", "weight": 10, "template": "t-b"}],
                              "rate_share": 0.5})
    assert resume_changes(stored, changed) == [
        "audience.lists: was ['newsletter'], now ['customers']",
        "variants[1].weight: was 40.0, now 10.0",
        "holdout_percent: was 10.0, now 5.0",
    ]
    with pytest.raises(CampaignDefinitionError) as refused:
        check_resume(stored, changed)
    assert str(refused.value).startswith("campaign spring-sale: a resume may change only thresholds and rate_share, "
                                         "and this definition also changes audience.lists: was ['newsletter']")


def test_a_resume_that_adds_a_variant_or_a_sender_name_names_those_fields():
    from app.domain.campaign import resume_changes

    stored = parse_campaign(VALID).to_dict()
    more = parse_campaign({**VALID, "from_name": "News", "variants": [*VALID["variants"],
                                                                      {"name": "c", "template": "t-c"}]})
    assert [change.split(":")[0] for change in resume_changes(stored, more)] == ["from_name", "variants"]
