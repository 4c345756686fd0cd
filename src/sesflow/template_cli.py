"""`sesflow template push|list|diff|preview|lint`: the project's SES templates, kept in a folder, checked, pushed
and rendered by SES before a campaign sends them (docs/templates.md).

The folder (default templates/) has one folder per template, named as the template is in SES:

    templates/flash-calm/subject.txt   the subject (one line; the newline at its end is not part of it)
    templates/flash-calm/body.html     the HTML part   } at least one of the two
    templates/flash-calm/body.txt      the text part   }
    templates/flash-calm/sample.json   sample template data, a JSON object (optional): what lint renders with

push [NAME]     lints, then creates or updates each template in SES v2 (CreateEmailTemplate, UpdateEmailTemplate),
                saying created, updated or unchanged; a template that does not parse is refused, and a folder that
                cannot be read stops everything before anything is pushed.
list            the templates in SES (ListEmailTemplates, every page).
diff [NAME]     the folder against SES: only here, only in SES, and a unified diff of each part that differs.
                Exit 0: the same; 1: they differ; 2: an error.
preview NAME    renders the template as stored in SES (TestRenderEmailTemplate) with --data FILE, or with a
                contact's attributes (--contact ADDRESS, merged as a campaign's personalization merges them;
                --campaign FILE for that campaign's fields and defaults), and writes the subject, HTML and text.
lint [NAME]     the checks of app.domain.templates: variables covered by the sample data (or, --campaign FILE,
                by that campaign's personalization), an unsubscribe link, SES's size limits, the template parses.
"""

from __future__ import annotations

import argparse
import difflib
import email
import email.policy
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.config
import botocore.exceptions

from sesflow.errors import InputError, email_address, report
from sesflow.files import read_json_object
from sesflow.target import Target, TargetError, add_target_options, target_of

DEFAULT_DIR = "templates"
SUBJECT_FILE, HTML_FILE, TEXT_FILE, SAMPLE_FILE = "subject.txt", "body.html", "body.txt", "sample.json"
FILES = {"subject": SUBJECT_FILE, "html": HTML_FILE, "text": TEXT_FILE}
DEFAULT_OUT = Path(".sesflow") / "preview"
# A template's name as SES v1 and the console accept it, and a folder name on every file system.
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
NAME_RULE = "1 to 64 letters, digits, _ or -"
# SES v2's template operations: "You can execute this operation no more than once per second" (the API reference
# of CreateEmailTemplate, UpdateEmailTemplate, GetEmailTemplate, ListEmailTemplates, TestRenderEmailTemplate). Calls
# are paced to that on a stack, and a throttled call is retried anyway. The local engine limits only TestRender.
PACE_SECONDS = 1.0
_RETRIES = botocore.config.Config(retries={"mode": "standard", "max_attempts": 8})


class TemplateFolderError(InputError):
    """A template folder that cannot be used as it is; the message names the file."""


@dataclass(frozen=True)
class Local:
    """A template folder: the template and its sample data (None without sample.json)."""

    template: Any  # app.domain.templates.EmailTemplate
    sample: dict[str, Any] | None
    folder: Path


def _read(path: Path) -> str | None:
    """The file's text, None when it does not exist."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise TemplateFolderError(f"{path}: cannot read it ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        raise TemplateFolderError(f"{path}: not UTF-8 text (byte {error.start})") from None


def load_folder(folder: Path) -> Local:
    """One template folder; TemplateFolderError naming the file when it cannot be used."""
    from app.domain.templates import EmailTemplate

    name = folder.name
    if not NAME.match(name):
        raise TemplateFolderError(f"{folder}: a template's folder is its SES name: {NAME_RULE}")
    subject = _read(folder / SUBJECT_FILE)
    if subject is None:
        raise TemplateFolderError(f"{folder / SUBJECT_FILE}: missing: every template needs a subject")
    subject = subject.rstrip("\r\n")
    if "\n" in subject or "\r" in subject:
        raise TemplateFolderError(f"{folder / SUBJECT_FILE}: a subject is one line (it has "
                                  f"{len(subject.splitlines())})")
    if not subject.strip():
        raise TemplateFolderError(f"{folder / SUBJECT_FILE}: empty: every template needs a subject")
    html, text = _read(folder / HTML_FILE), _read(folder / TEXT_FILE)
    for file, body in ((HTML_FILE, html), (TEXT_FILE, text)):
        if body is not None and not body.strip():
            raise TemplateFolderError(f"{folder / file}: empty: give it content, or delete it to send without it")
    if html is None and text is None:
        raise TemplateFolderError(f"{folder}: needs {HTML_FILE}, {TEXT_FILE} or both (has neither)")
    sample = None
    if (folder / SAMPLE_FILE).exists():
        sample = read_json_object(folder / SAMPLE_FILE, "sample template data is a JSON object (of variable: value)",
                                  error=TemplateFolderError)
    return Local(EmailTemplate(name, subject, html, text), sample, folder)


def load(directory: Path, name: str | None = None) -> list[Local]:
    """Every template folder of `directory` (or only `name`), by name; TemplateFolderError when the folder, or any
    template in it, cannot be used (nothing is pushed then)."""
    if not directory.is_dir():
        raise TemplateFolderError(f"{directory}: no such folder (templates live in {DEFAULT_DIR}/NAME/ with "
                                  f"{SUBJECT_FILE} and {HTML_FILE} or {TEXT_FILE}; --dir names another folder)")
    folders = sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    if name is not None:
        chosen = [p for p in folders if p.name == name]
        if not chosen:
            known = ", ".join(p.name for p in folders) or "none"
            raise TemplateFolderError(f"{directory / name}: no such template folder (templates here: {known})")
        folders = chosen
    if not folders:
        raise TemplateFolderError(f"{directory}: no template folders in it (one folder per template: "
                                  f"{directory}/NAME/{SUBJECT_FILE} ...)")
    return [load_folder(p) for p in folders]


# --- SES --------------------------------------------------------------------------------------------


def _ses(target: Target) -> Any:
    return _Paced(target.client("sesv2", config=_RETRIES), 0.0 if target.is_local else PACE_SECONDS)


class _Paced:
    """An SES v2 client whose calls of each operation are at least `seconds` apart."""

    def __init__(self, client: Any, seconds: float) -> None:
        self._client, self._seconds, self._last = client, seconds, {}

    def __getattr__(self, operation: str) -> Any:
        method = getattr(self._client, operation)

        def paced(**kwargs: Any) -> Any:
            if self._seconds:
                wait = self._last.get(operation, -self._seconds) + self._seconds - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                self._last[operation] = time.monotonic()
            return method(**kwargs)

        return paced


def _code(error: botocore.exceptions.ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _message(error: botocore.exceptions.ClientError) -> str:
    return error.response.get("Error", {}).get("Message", "") or str(error)


def stored(ses: Any, name: str) -> Any | None:
    """The template `name` as SES has it (an EmailTemplate), None when SES has none."""
    from app.domain.templates import EmailTemplate

    try:
        response = ses.get_email_template(TemplateName=name)
    except botocore.exceptions.ClientError as error:
        if _code(error) == "NotFoundException":
            return None
        raise
    return EmailTemplate.from_ses(name, response.get("TemplateContent") or {})


def listed(ses: Any) -> list[dict[str, Any]]:
    """Every template in SES: TemplateName and CreatedTimestamp, every page (PageSize at most 100)."""
    found, token = [], None
    while True:
        page = ses.list_email_templates(PageSize=100, **({"NextToken": token} if token else {}))
        found += page.get("TemplatesMetadata", [])
        token = page.get("NextToken")
        if not token:
            return found


def push(target: Target, locals_: list[Local]) -> list[tuple[str, str]]:
    """(name, created|updated|unchanged) of each template, pushed to SES in order."""
    ses, done = _ses(target), []
    for local in locals_:
        template = local.template
        current = stored(ses, template.name)
        if current is None:
            ses.create_email_template(TemplateName=template.name, TemplateContent=template.ses_content())
            done.append((template.name, "created"))
        elif current == template:
            done.append((template.name, "unchanged"))
        else:
            ses.update_email_template(TemplateName=template.name, TemplateContent=template.ses_content())
            done.append((template.name, "updated"))
    return done


def diff(target: Target, directory: Path, locals_: list[Local], everything: bool) -> list[str]:
    """The differences, as lines to print: only here, only in SES (`everything`: every template of SES is
    compared), and a unified diff per differing part. [] when the folder and SES agree."""
    ses, out = _ses(target), []
    here = {local.template.name: local for local in locals_}
    for name, local in here.items():
        current = stored(ses, name)
        if current is None:
            out.append(f"{name}: only here ({local.folder}): `sesflow template push {name}` creates it")
            continue
        for part, file in FILES.items():
            theirs, ours = getattr(current, part), getattr(local.template, part)
            if theirs == ours:
                continue
            out.append(f"{name}: {part} differs")
            out += [line.rstrip("\n") for line in difflib.unified_diff(
                _lines(theirs), _lines(ours), fromfile=f"SES {target.name}: {name} {part}",
                tofile=str(local.folder / file) + ("" if ours is not None else " (absent)"))]
    if everything:
        for entry in listed(ses):
            if entry["TemplateName"] not in here:
                out.append(f"{entry['TemplateName']}: only in SES on {target.name} (not in {directory})")
    return out


def _lines(text: str | None) -> list[str]:
    if text is None:
        return []
    lines = text.splitlines(keepends=True)
    return [line if line.endswith("\n") else line + "\n" for line in lines]


# --- preview ----------------------------------------------------------------------------------------


def contact_data(target: Target, address: str, campaign: Any | None) -> dict[str, Any]:
    """The template data a campaign's message to `address` has: the contact's attributes (RecipientsTable) merged
    by the campaign's personalization (its fields over its defaults), or without a campaign every attribute the
    contact has, and its address; with sesflow's unsubscribe_url."""

    config = target.lambda_settings()
    from app import contacts
    from app.domain.campaign import Personalization

    key = email_address(address)
    found = contacts.read_contacts([key], config, with_markers=False).get(key)
    if found is None:
        raise LookupError(f"no contact {key} in {config.recipients_table} ({target.name})")
    from boto3.dynamodb.types import Binary

    # As SendBatch reads them: a binary attribute is nothing a template can print.
    attributes = {**{k: v for k, v in found.attributes.items() if not isinstance(v, Binary)}, "address": key}
    personalization = campaign.personalization if campaign is not None else Personalization(tuple(attributes), {})
    data = personalization.template_data(attributes)
    return {**data, **_sesflow_data(target, key, campaign)}


def _sesflow_data(target: Target, address: str, campaign: Any | None) -> dict[str, str]:
    """What SendBatch adds to every message's data: the recipient's one-click link. A preview's is shaped like the
    real one, on the stack's unsubscribe URL, but signed with no secret of the stack's: it unsubscribes nobody."""
    from app import unsubscribe
    from app.domain.templates import UNSUBSCRIBE_URL

    base = target.outputs.get("UnsubscribeUrl") or "https://unsubscribe.example/"
    campaign_id = campaign.id if campaign is not None else "preview"
    try:
        return {UNSUBSCRIBE_URL: unsubscribe.link(base, b"sesflow template preview", campaign_id, address)}
    except ValueError:
        return {UNSUBSCRIBE_URL: "https://unsubscribe.example/preview"}


def preview(target: Target, name: str, data: dict[str, Any], out: Path) -> dict[str, Path]:
    """The template as SES renders it with `data`, written to out/NAME.{subject.txt,html,txt,eml}; the paths by
    part. LookupError when SES has no such template, ValueError with SES's message when it cannot render it."""
    ses = _ses(target)
    try:
        rendered = ses.test_render_email_template(TemplateName=name, TemplateData=json.dumps(data))["RenderedTemplate"]
    except botocore.exceptions.ClientError as error:
        if _code(error) == "NotFoundException":
            raise LookupError(f"template {name} is not in SES on {target.name}: sesflow template push {name}") \
                from None
        if _code(error) == "BadRequestException":
            raise ValueError(f"{name}: SES cannot render it with this data: {_message(error)}") from None
        raise
    message = email.message_from_string(rendered, policy=email.policy.default)
    parts = {"subject": str(message.get("Subject", ""))}
    for part in message.walk():
        if part.get_content_type() == "text/html" and "html" not in parts:
            parts["html"] = part.get_content()
        elif part.get_content_type() == "text/plain" and "text" not in parts:
            parts["text"] = part.get_content()
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = {}
        for part, suffix in (("subject", ".subject.txt"), ("html", ".html"), ("text", ".txt")):
            if part in parts:
                path = out / f"{name}{suffix}"
                path.write_text(parts[part] + ("\n" if part == "subject" else ""), encoding="utf-8")
                written[part] = path
        path = out / f"{name}.eml"
        path.write_text(rendered, encoding="utf-8")
        written["message"] = path
    except OSError as error:
        raise ValueError(f"{out}: cannot write the preview there ({error.strerror or error})") from None
    return written


# --- the command --------------------------------------------------------------------------------------


def _campaign(path: str | None) -> Any | None:
    if path is None:
        return None
    from app.domain.campaign import parse_campaign
    from app.errors import CampaignDefinitionError

    from sesflow.campaign_cli import _definition

    try:
        return parse_campaign(_definition(path))
    except CampaignDefinitionError as error:
        raise InputError(f"{path}: the campaign definition is not valid: {error}") from None


def lint_all(locals_: list[Local], campaign: Any | None = None, *, marketing: bool = True) -> list[Any]:
    """The problems of each template: against the campaign's personalization (and its stream) when given, else
    against each template's sample data."""
    from app.domain.campaign import MARKETING
    from app.domain.templates import campaign_names, lint

    problems = []
    for local in locals_:
        if campaign is not None:
            problems += lint(local.template, names=campaign_names(campaign.personalization),
                             marketing=campaign.stream == MARKETING)
        else:
            problems += lint(local.template, sample=local.sample if local.sample is not None else {},
                             marketing=marketing)
    return problems


def _lint_targets(directory: Path, name: str | None, campaign: Any | None) -> tuple[list[Local], list[Any]]:
    """The templates to lint and the inline variants of the campaign as templates; with a campaign and no NAME,
    the templates its variants name (each must be in the folder)."""
    from app.domain.templates import EmailTemplate

    if campaign is None or name is not None:
        return load(directory, name), []
    named = {v.template: v.name for v in campaign.variants if v.template is not None}
    missing = [n for n in named if not (directory / n).is_dir()]
    if missing:
        raise TemplateFolderError("; ".join(
            f"{directory / n}: no such template folder (variant {named[n]} of campaign {campaign.id} names template "
            f"{n}; lint checks the folder's copy)" for n in missing))
    inline = [Local(EmailTemplate(f"{campaign.id}/{v.name}", v.subject or "", v.html, v.text), None, directory)
              for v in campaign.variants if v.template is None]
    return [load(directory, n)[0] for n in sorted(named)], inline


def template(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    try:
        if args.action == "lint":
            campaign = _campaign(args.campaign)
            locals_, inline = _lint_targets(directory, args.name, campaign)
            problems = lint_all(locals_ + inline, campaign, marketing=not args.transactional)
            for problem in problems:
                print(problem)
            checked = len(locals_) + len(inline)
            print(f"{checked} template{'s' if checked != 1 else ''} checked, {len(problems)} "
                  f"problem{'s' if len(problems) != 1 else ''}", file=sys.stderr)
            return 1 if problems else 0
        if args.action == "push":
            locals_ = load(directory, args.name)  # every folder readable, or nothing is pushed
            problems = lint_all(locals_, marketing=not args.transactional)
            fatal = [p for p in problems if p.fatal]
            for problem in problems:
                print(f"{'error' if problem.fatal else 'warning'}: {problem}", file=sys.stderr)
            if fatal:
                names = sorted({p.template for p in fatal})
                print(f"sesflow: nothing pushed: {', '.join(names)} would fail every message", file=sys.stderr)
                return 1
            target = target_of(args)
            for name, outcome in push(target, locals_):
                print(f"{name}: {outcome}")
            return 0
        target = target_of(args)
        if args.action == "list":
            entries = listed(_ses(target))
            if not entries:
                print(f"no templates in SES on {target.name}: `sesflow template push` creates them from "
                      f"{DEFAULT_DIR}/")
            for entry in sorted(entries, key=lambda e: e["TemplateName"]):
                created = entry.get("CreatedTimestamp")
                print(f"{entry['TemplateName']:<40} {created.isoformat() if hasattr(created, 'isoformat') else ''}")
            return 0
        if args.action == "diff":
            locals_ = load(directory, args.name)
            lines = diff(target, directory, locals_, everything=args.name is None)
            for line in lines:
                print(line)
            if not lines:
                print(f"{directory} and SES on {target.name} have the same templates")
            return 1 if lines else 0
        # preview
        if not NAME.match(args.name):
            raise InputError(f"{args.name!r}: a template's name is {NAME_RULE}")
        if Path(args.out).exists() and not Path(args.out).is_dir():
            raise InputError(f"--out {args.out}: is a file, not a folder (the preview writes four files there)")
        campaign = _campaign(args.campaign)
        if args.data is not None:
            data = _data_file(args.data)
            data = {**_sesflow_data(target, "preview@example.com", campaign), **data}
        else:
            data = contact_data(target, args.contact, campaign)
        for part, path in preview(target, args.name, data, Path(args.out)).items():
            print(f"{part}: {path}")
        return 0
    except (TemplateFolderError, TargetError, LookupError, ValueError) as error:
        code = report(error)
        return 2 if args.action == "diff" else code  # diff: 1 means "they differ", so every error is 2
    except botocore.exceptions.ClientError as error:
        print(f"sesflow: SES refused it: {_code(error)}: {_message(error)}", file=sys.stderr)
        return 2 if args.action == "diff" else 1


def _data_file(path: str) -> dict[str, Any]:
    return read_json_object(path, "template data is a JSON object (of variable: value)")


def register(commands: Any) -> None:
    """Add `template push|list|diff|preview|lint` to the CLI's subcommands."""
    group = commands.add_parser("template", help="the project's SES templates: push, list, diff, preview, lint")
    actions = group.add_subparsers(dest="action", required=True)
    helps = {
        "push": "lint, then create or update the folder's templates in SES (created/updated/unchanged)",
        "list": "the templates in SES",
        "diff": "the folder against SES: only here, only in SES, and what differs (exit 1 when they differ)",
        "preview": "render a pushed template with SES (TestRenderEmailTemplate) and write its subject, HTML and text",
        "lint": "check the folder's templates: variables covered, unsubscribe link, sizes, parsing (exit 1 on a "
                "problem)",
    }
    for name, text in helps.items():
        action = actions.add_parser(name, help=text)
        if name == "preview":
            action.add_argument("name", metavar="NAME")
            source = action.add_mutually_exclusive_group(required=True)
            source.add_argument("--contact", metavar="ADDRESS", help="render with this contact's attributes")
            source.add_argument("--data", metavar="FILE", help="render with this JSON object")
            action.add_argument("--campaign", metavar="FILE", default=None,
                                help="with --contact: merge as this campaign's personalization does")
            action.add_argument("--out", metavar="DIR", default=str(DEFAULT_OUT),
                                help=f"where the files go (default {DEFAULT_OUT})")
        elif name != "list":
            action.add_argument("name", metavar="NAME", nargs="?", default=None, help="one template (default: all)")
        if name in ("push", "diff", "lint"):
            action.add_argument("--dir", default=DEFAULT_DIR, help=f"the templates folder (default {DEFAULT_DIR})")
        else:
            action.set_defaults(dir=DEFAULT_DIR)
        if name == "lint":
            action.add_argument("--campaign", metavar="FILE", default=None,
                                help="check against this campaign's personalization and stream, not the sample data")
        if name in ("push", "lint"):
            action.add_argument("--transactional", action="store_true",
                                help="no unsubscribe link needed (without --campaign)")
        if name != "lint":
            add_target_options(action)
        action.set_defaults(func=template)
