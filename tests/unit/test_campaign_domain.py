"""The campaign definition and variant assignment, pure (no AWS)."""

from collections import Counter

import pytest
from app.domain.campaign import HOLDOUT, assign_variant, parse_campaign
from app.errors import CampaignDefinitionError

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
        ({"audience": None}, "audience.list_id: required"),
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
    for path in ("id:", "sender:", "audience.list_id:", "variants:"):
        assert path in text


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
