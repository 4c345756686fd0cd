"""Email templates checked before they reach SES: pure functions, no AWS, no environment.

A template is a subject with an HTML part, a text part or both (SES v2 EmailTemplateContent). `lint` reports what
would go wrong once SES renders it for a campaign, each problem naming the template, the part and the variable:

- the part does not parse (SES fails every message with it);
- a variable it prints is not in the data every message has: the campaign's personalization fields and defaults
  (`campaign_names`), or the sample data (then every part is also rendered with the sample, as SES renders it, so
  a nested name the sample lacks is caught too). SES sends nothing for such a message and publishes a Rendering
  Failure "Attribute 'x' is not present in the rendering data.";
- a marketing template without an unsubscribe link in each body part: `{{unsubscribe_url}}` (the campaign's
  signed one-click link, which SendBatch puts in every message's data) or a link of the team's own whose address
  mentions "unsubscribe";
- the template is over SES's size limit (500 KB, subject, HTML and text together), or the message rendered with
  the sample is over SES v2's message limit (40 MB after base64 encoding).

The variables are read by app.domain.rendering, the renderer the simulated SES renders every message with: a name
inside {{#each}} or {{#with}} is the item's own, a name under {{#if x}} is needed only when x is there.

    problems = lint(template, names=campaign_names(campaign.personalization), marketing=True)
    problems = lint(template, sample={"first_name": "Ada"})
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from app.domain.rendering import RenderingError, compile_template, reads, render

SUBJECT, HTML, TEXT = "subject", "html", "text"
PARTS = (SUBJECT, HTML, TEXT)
_SES_PARTS = {SUBJECT: "Subject", HTML: "Html", TEXT: "Text"}
# The signed one-click unsubscribe link of the message's recipient (app.unsubscribe.link): SendBatch puts it in
# every campaign message's data, beside the List-Unsubscribe header that carries the same link.
UNSUBSCRIBE_URL = "unsubscribe_url"
SESFLOW_NAMES = frozenset({UNSUBSCRIBE_URL})
# A template's subject, HTML and text together: 500 KB, as the SES developer guide has long stated it (quoted so by
# third parties); AWS's current quotas page (ses/latest/dg/quotas.html) does not list it, so this is a warning,
# not a refusal.
MAX_TEMPLATE_BYTES = 500 * 1024
# A message after base64 encoding, through the SES v2 API (quotas.html).
MAX_MESSAGE_BYTES = 40 * 1024 * 1024
# Problem kinds.
PARSE, CONTENT, VARIABLE, UNSUBSCRIBE, SIZE = "parse", "content", "variable", "unsubscribe", "size"
KINDS = (PARSE, CONTENT, VARIABLE, UNSUBSCRIBE, SIZE)
_MISSING = re.compile(r"^Attribute '(.+)' is not present in the rendering data\.$")
_UNSUBSCRIBE_LINK = re.compile(r"""(?:href\s*=\s*["']?|https?://)[^"'\s>]*unsubscribe""", re.IGNORECASE)


@dataclass(frozen=True)
class EmailTemplate:
    """An SES template: a subject and at least one of html and text (None: the part is absent)."""

    name: str
    subject: str
    html: str | None = None
    text: str | None = None

    def parts(self) -> dict[str, str]:
        """The parts it has, by part name (subject, html, text)."""
        return {part: value for part in PARTS if (value := getattr(self, part)) is not None}

    def ses_content(self) -> dict[str, str]:
        """SES v2 EmailTemplateContent."""
        return {_SES_PARTS[part]: value for part, value in self.parts().items()}

    @classmethod
    def from_ses(cls, name: str, content: Mapping[str, Any]) -> EmailTemplate:
        """From GetEmailTemplate's TemplateContent (an absent or empty part is None)."""
        return cls(name, content.get("Subject") or "", content.get("Html") or None, content.get("Text") or None)

    def size(self) -> int:
        """Its size as SES counts it, near enough: the UTF-8 bytes of its parts."""
        return sum(len(value.encode()) for value in self.parts().values())


@dataclass(frozen=True)
class Problem:
    """What is wrong with one template: `part` is subject, html, text or None (the whole template), `variable`
    the template variable concerned, if any; `kind` one of KINDS."""

    template: str
    part: str | None
    variable: str | None
    message: str
    kind: str

    def __str__(self) -> str:
        return f"{self.template}: {self.part or 'template'}: {self.message}"

    @property
    def fatal(self) -> bool:
        """SES would send no message with it at all: a part that does not parse, or no subject or body."""
        return self.kind in (PARSE, CONTENT)


def campaign_names(personalization: Any) -> frozenset[str]:
    """The top-level names every message of a campaign has in its data: its personalization's defaults and fields
    (app.domain.campaign.Personalization: every field has a default), and sesflow's own (unsubscribe_url)."""
    return frozenset(personalization.defaults) | frozenset(personalization.fields) | SESFLOW_NAMES


def lint(template: EmailTemplate, *, names: Collection[str] | None = None, sample: Mapping[str, Any] | None = None,
         marketing: bool = True) -> list[Problem]:
    """Every problem of `template`, in part order; [] when it is fine.

    names: the top-level names each message's data has (`campaign_names(...)` for a campaign); None: the sample's
    names and sesflow's. sample: data to render every part with, as SES would (a name it lacks, even nested, is a
    problem); sesflow's names are added to it with placeholder values. marketing: whether each body part must
    carry an unsubscribe link (a transactional message need not)."""
    problems: list[Problem] = []
    name = template.name
    parts = template.parts()
    if not template.subject.strip():
        problems.append(Problem(name, SUBJECT, None, "is empty: SES needs a subject", CONTENT))
    if HTML not in parts and TEXT not in parts:
        problems.append(Problem(name, None, None, "has neither an HTML nor a text part: SES needs one of them",
                                CONTENT))
    if (size := template.size()) > MAX_TEMPLATE_BYTES:
        problems.append(Problem(name, None, None, f"is {size:,} bytes, over SES's {MAX_TEMPLATE_BYTES:,} bytes a "
                                                  f"template (subject, HTML and text together)", SIZE))
    provided = frozenset(names) if names is not None else frozenset(sample or {}) | SESFLOW_NAMES
    where = "the campaign's personalization (a field or a default)" if names is not None else "the sample data"
    data = {**sesflow_data(), **(sample or {})} if sample is not None else None
    rendered: dict[str, str] = {}
    for part, source in parts.items():
        error = compile_template(source).error
        if error:
            problems.append(Problem(name, part, None, f"does not parse: {error}", PARSE))
            continue
        uncovered = _uncovered(name, part, source, provided, where)
        problems += uncovered
        if marketing and part != SUBJECT and not _has_unsubscribe_link(source):
            problems.append(Problem(name, part, UNSUBSCRIBE_URL, "has no unsubscribe link: a marketing email "
                                    "carries one, {{unsubscribe_url}} (the recipient's one-click link) or a link "
                                    "of your own whose address mentions 'unsubscribe'", UNSUBSCRIBE))
        if data is not None and not uncovered:
            try:
                rendered[part] = render(source, data)
            except RenderingError as failure:
                missing = _MISSING.match(failure.message)
                problems.append(Problem(name, part, missing.group(1) if missing else None,
                                        f"does not render with the sample data: {failure.message}", VARIABLE))
    if rendered:
        body = sum(len(rendered.get(p, "").encode()) for p in (HTML, TEXT))
        encoded = (body + 2) // 3 * 4  # base64, as the quota counts it
        if encoded > MAX_MESSAGE_BYTES:
            problems.append(Problem(name, None, None, f"renders with the sample data to about {encoded:,} bytes "
                                    f"base64-encoded, over SES v2's {MAX_MESSAGE_BYTES:,} a message", SIZE))
    return problems


def _uncovered(name: str, part: str, source: str, provided: frozenset[str], where: str) -> list[Problem]:
    """A problem for each variable the part prints that the data may lack; one per variable, the first use."""
    problems, seen = [], set()
    for read in reads(source):
        if read.safe or read.name in provided or read.name in seen:
            continue
        if not read.guards <= provided:  # under an {{#if}} of a name never in the data: never rendered
            continue
        seen.add(read.name)
        problems.append(Problem(name, part, read.name, f"uses {{{{{read.original}}}}}, which is not in {where}: "
                                f"SES would send nothing to a recipient without it (Rendering Failure: "
                                f"\"Attribute '{read.original}' is not present in the rendering data.\")", VARIABLE))
    return problems


def _has_unsubscribe_link(source: str) -> bool:
    return any(read.name == UNSUBSCRIBE_URL for read in reads(source)) or bool(_UNSUBSCRIBE_LINK.search(source))


def sesflow_data() -> dict[str, str]:
    """What sesflow adds to every message's data, with stand-in values (a rendering check's, a preview's)."""
    return {name: _placeholder(name) for name in SESFLOW_NAMES}


def _placeholder(name: str) -> str:
    return "https://unsubscribe.example/preview" if name == UNSUBSCRIBE_URL else name
