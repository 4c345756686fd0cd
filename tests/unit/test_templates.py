"""app.domain.templates: what `sesflow template lint` and push report before SES ever renders a template."""

import json

import pytest
from app.domain.campaign import parse_campaign
from app.domain.rendering import RenderingError, reads
from app.domain.templates import (
    MAX_TEMPLATE_BYTES,
    PARSE,
    UNSUBSCRIBE,
    VARIABLE,
    EmailTemplate,
    campaign_names,
    lint,
)
from app.errors import CampaignDefinitionError

from sesflow import template_cli
from tests.conftest import ROOT

FOOTER = '<a href="{{unsubscribe_url}}">Unsubscribe</a>'


def template(subject="Hi {{first_name}}", html=f"<p>Hello {{{{first_name}}}}</p>{FOOTER}",
             text="Hello {{first_name}}\nUnsubscribe: {{unsubscribe_url}}"):
    return EmailTemplate("welcome", subject, html, text)


def campaign(**personalization):
    return parse_campaign({"id": "c1", "sender": "news@example.com", "audience": {"lists": ["newsletter"]},
                           "variants": [{"name": "a", "template": "welcome"}], "holdout_percent": 0,
                           **({"personalization": personalization} if personalization else {})})


def test_reads_are_the_top_level_names_respecting_each_with_and_if():
    source = ("{{first_name}} {{contact.city}} {{#each items}}{{name}} {{../title}} {{@root.shop}}{{/each}}"
              "{{#with offer}}{{code}}{{/with}}{{#if vip}}{{discount}}{{else}}{{regular}}{{/if}}"
              "{{#if nickname}}{{nickname}}{{/if}}")

    found = {(r.name, r.original, tuple(sorted(r.guards)), r.safe) for r in reads(source)}

    assert found == {("first_name", "first_name", (), False), ("contact", "contact.city", (), False),
                     ("title", "../title", ("items",), False), ("shop", "@root.shop", ("items",), False),
                     ("discount", "discount", ("vip",), False), ("regular", "regular", (), False),
                     ("nickname", "nickname", ("nickname",), True)}
    with pytest.raises(RenderingError, match="not closed"):
        reads("{{#if vip}}no end")


def test_a_variable_the_campaign_does_not_provide_is_named_with_its_template_and_part():
    problems = lint(template(html=f"<p>Hello {{{{first_name}}}}, {{{{city}}}}</p>{FOOTER}"),
                    names=campaign_names(campaign(fields=["first_name"], defaults={"first_name": "there"})
                                         .personalization))

    assert [(p.template, p.part, p.variable, p.kind) for p in problems] == [("welcome", "html", "city", VARIABLE)]
    assert str(problems[0]).startswith("welcome: html: uses {{city}}, which is not in the campaign's "
                                       "personalization")
    assert "Attribute 'city' is not present in the rendering data." in str(problems[0])


def test_every_variable_covered_by_fields_defaults_and_the_unsubscribe_link_is_clean():
    names = campaign_names(campaign(fields=["first_name"], defaults={"first_name": "there"}).personalization)

    assert lint(template(), names=names) == []
    problems = lint(template(), names=campaign_names(campaign().personalization))  # no personalization at all
    assert {(p.part, p.variable) for p in problems} == {("subject", "first_name"), ("html", "first_name"),
                                                        ("text", "first_name")}


def test_a_variable_under_an_if_of_a_name_never_in_the_data_needs_nothing():
    html = f"{{{{#if vip}}}}{{{{discount}}}}{{{{/if}}}}{FOOTER}"

    assert lint(template(subject="Hi", html=html, text=None), names={"unsubscribe_url"}) == []
    problems = lint(template(subject="Hi", html=html, text=None), names={"unsubscribe_url", "vip"})
    assert [(p.part, p.variable) for p in problems] == [("html", "discount")]


def test_a_marketing_template_without_an_unsubscribe_link_is_a_problem_in_each_body_part():
    bare = template(html="<p>Hello {{first_name}}</p>", text="Hello {{first_name}}")

    problems = lint(bare, sample={"first_name": "Ada"})

    assert [(p.template, p.part, p.variable, p.kind) for p in problems] == [
        ("welcome", "html", "unsubscribe_url", UNSUBSCRIBE), ("welcome", "text", "unsubscribe_url", UNSUBSCRIBE)]
    assert lint(bare, sample={"first_name": "Ada"}, marketing=False) == []
    own = template(html='<p>Hi</p><a href="https://example.com/email/unsubscribe?u={{first_name}}">Leave</a>',
                   text="Leave: https://example.com/email/unsubscribe")
    assert lint(own, sample={"first_name": "Ada"}) == []


def test_without_a_campaign_the_sample_data_is_rendered_as_ses_renders_it():
    nested = template(html=f"<p>{{{{contact.first}}}}</p>{FOOTER}")

    problems = lint(nested, sample={"first_name": "Ada", "contact": {"last": "Lovelace"}})

    assert [(p.part, p.variable) for p in problems] == [("html", "contact.first")]
    assert "Attribute 'contact.first' is not present in the rendering data." in problems[0].message
    missing = lint(template(), sample={})
    assert {(p.part, p.variable) for p in missing} == {("subject", "first_name"), ("html", "first_name"),
                                                       ("text", "first_name")}


def test_a_part_that_does_not_parse_is_fatal_and_names_its_part():
    problems = lint(template(html=f"{{{{#if first_name}}}}Hello{FOOTER}"), sample={"first_name": "Ada"})

    assert [(p.part, p.kind, p.fatal) for p in problems] == [("html", PARSE, True)]
    assert "does not parse: Template syntax error" in problems[0].message


def test_a_template_over_ses_size_limit_is_a_problem():
    big = template(html=FOOTER + "x" * MAX_TEMPLATE_BYTES)

    (problem,) = lint(big, sample={"first_name": "Ada"})
    assert problem.part is None and "over SES's 512,000 bytes a template" in problem.message


def test_a_campaign_may_not_set_the_unsubscribe_url_itself():
    with pytest.raises(CampaignDefinitionError, match="personalization.defaults.unsubscribe_url: sesflow's"):
        campaign(defaults={"unsubscribe_url": "https://example.com/x"})


def test_the_shipped_templates_are_clean_with_their_samples_and_with_the_demo_campaign():
    found = template_cli.load(ROOT / "templates")
    flash = parse_campaign(json.loads((ROOT / "events/campaign/flash_sale.json").read_text()))

    assert {local.template.name for local in found} >= {"flash-calm", "flash-urgent"}
    for local in found:
        assert lint(local.template, sample=local.sample) == []
        assert lint(local.template, names=campaign_names(flash.personalization)) == []


@pytest.mark.parametrize("name", ["flash_sale.json", "newsletter_test_then_winner.json"])
def test_the_demo_campaigns_lint_clean_stored_and_inline_templates_alike(name):
    campaign = parse_campaign(json.loads((ROOT / "events/campaign" / name).read_text()))

    found, inline = template_cli._lint_targets(ROOT / "templates", None, campaign)

    assert len(found) + len(inline) == 2
    assert template_cli.lint_all(found + inline, campaign) == []
