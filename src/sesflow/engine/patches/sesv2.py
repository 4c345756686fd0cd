"""The SES v2 operations sesflow uses that moto 5.2.5 lacks or gets wrong, answered from `engine.ses`.

moto dispatches an sesv2 call to `SESV2Response.<snake_case_operation>`, so adding methods is enough;
`send_email` is replaced. Accepted messages still go through moto's v1 backend (sent_messages, SNS
feedback for identity notification topics) and also land in `ses.simulator().outbox`.

Simulated:
- Email templates: Create/Get/Update/Delete/ListEmailTemplates, stored as moto v1 templates.
- SendEmail with Simple, Raw or Template content (TemplateName, TemplateArn or inline TemplateContent,
  TemplateData, Headers).
- SendBulkEmail: DefaultContent.Template (stored or inline); an entry's replacement data replaces the default
  data, which is used for an entry without its own or with an empty object ("If a Destination object contains
  an empty JSON object in the ReplacementTemplateData property, the values in the DefaultTemplateData property
  are used", send-personalized-email-api.html); its tags and headers are merged over the defaults by name;
  one outbox record and one BulkEmailEntryResult per entry, in order: SUCCESS with a MessageId, or, for an
  entry with an address that is not one, INVALID_PARAMETER with an Error naming it, and nothing sent or counted
  against the quota for that entry only (SendBulkTemplatedEmail's API reference: an invalid recipient address
  rejects "the entire message", that is the destination's; BulkEmailEntryResult lists the per-entry statuses).
- Checks before accepting: unknown configuration set or contact list -> NotFoundException; unknown
  template -> NotFoundException; unverified sender (the address inside "Name <address>") -> MessageRejected;
  a sender or reply-to address that is not 7-bit ASCII or lacks its @domain -> BadRequestException; the
  account's sending disabled (PutAccountSendingAttributes SendingEnabled false) -> SendingPausedException; 0 or
  more than 50 recipients per message, or more than 50 bulk entries -> BadRequestException; in SendEmail (one
  message) an address that is not one -> BadRequestException. The outbox record keeps the From header
  (`from_address`, display name included) and ReplyToAddresses (`reply_to`).
- Sending quota on the virtual clock, counted in recipients (quotas.html): more than MaxSendRate in one
  second -> TooManyRequestsException "Maximum sending rate exceeded."; more than Max24HourSend in a
  rolling 24 hours -> LimitExceededException "Daily message quota exceeded."
- Account-level suppression list (Put/Get/List/DeleteSuppressedDestination, PutAccountSuppression
  Attributes): a send to a suppressed address is accepted and recorded as suppressed, not delivered.
- Template rendering as SES renders (engine/rendering.py: its Handlebars, no HTML escaping), per message, of
  the subject, HTML and text, kept on the outbox record. A variable the data lacks does not fail the call (the
  entry is SUCCESS with a MessageId): the record carries `rendering_failure`, nothing is delivered, and SES
  publishes a Rendering Failure event to the configuration set's destinations that match RENDERING_FAILURE,
  with a feedback model or without one (it is SES's own answer, not the population's).
- TestRenderEmailTemplate: the stored template rendered with TemplateData, as a MIME message (Date, Subject,
  multipart/alternative text and HTML); unknown template -> NotFoundException; a variable the data lacks or a
  template that does not parse -> BadRequestException with the rendering's message; more than one call per
  (virtual) second -> TooManyRequestsException, as the API reference says ("no more than once per second"); on a
  served engine a wall-clock second since the last call counts too (its virtual clock stands still between
  an operator's commands).
- GetAccount: SendQuota, ProductionAccessEnabled, SendingEnabled, SuppressionAttributes;
  PutAccountSendingAttributes (SendingEnabled).
- GetEmailIdentity: moto's answer, with VerifiedForSendingStatus true when the identity's VerificationStatus is
  SUCCESS (moto says false for every identity, though it sends from all of them) and, for a verified domain, Easy
  DKIM's DkimAttributes (SigningEnabled, Status SUCCESS): the engine's identities are verified when created.
- GetConfigurationSet: moto's answer with SendingOptions.SendingEnabled a boolean, true unless the set was created
  with it false (moto returns the SendingOptions object itself in its place).
- Configuration set event destinations: Create/Get/Update/DeleteConfigurationSetEventDestination(s),
  kept in `engine.ses`; `ses.publish_event` delivers an event record to them as SES would. Checks:
  unknown configuration set or destination -> NotFoundException; duplicate name -> AlreadyExistsException;
  more than 10 per set -> LimitExceededException; no or unknown MatchingEventTypes, not exactly one
  destination, an EventBridge bus other than default -> BadRequestException.
- Feedback: with a model set (`simulator().configure(feedback=engine.feedback_model.FeedbackModel(...))`),
  each accepted message sent with a configuration set publishes the model's events (Send, Delivery, Bounce,
  Complaint, Open, Click, Rendering Failure) to the set's destinations; the mailbox simulator's addresses
  behave as AWS documents. Off by default: then nothing is published unless a test calls `ses.publish_event`.

Not simulated: the sandbox's verified-recipient rule, automatic suppression from bounces and complaints
(unless the feedback model's auto_suppress is on), the mailbox simulator's exemption from the 24-hour quota
(its recipients count like any others), contact-list unsubscribe filtering,
attachments (accepted, not recorded), tenants, message size.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import time
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr

from moto.ses import utils as ses_utils
from moto.ses.models import SESBackend
from moto.sesv2.responses import SESV2Response

from sesflow.engine import limits, rendering, runtime
from sesflow.engine.patches import MotoDriftError
from sesflow.engine.ses import (
    EVENT_TYPES,
    MAX_EVENT_DESTINATIONS,
    SUPPRESSION_REASONS,
    SentEmail,
    SuppressedDestination,
    aws_error,
    publish_event,
    rendering_failure_record,
    simulator,
)

_TARGET = "moto.sesv2.responses.SESV2Response"


def _now() -> datetime:
    return runtime.current().clock.now()


def _params(self: SESV2Response) -> dict:
    return json.loads(self.body or "{}")


def _pairs(items: list[dict] | None) -> dict[str, str]:
    return {item["Name"]: item["Value"] for item in items or []}


def _json_object(text: str | None, what: str) -> dict:
    try:
        data = json.loads(text or "{}")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise aws_error("BadRequestException", f"{what} must be a JSON object.")
    return data


def _page(self: SESV2Response, items: list, default_size: int) -> tuple[list, dict]:
    """Offset pagination: NextToken is the index of the next item."""
    try:
        start, size = int(self._get_param("NextToken") or 0), int(self._get_param("PageSize") or default_size)
    except ValueError:
        raise aws_error("BadRequestException", "Invalid NextToken or PageSize.") from None
    more = {"NextToken": str(start + size)} if start + size < len(items) else {}
    return items[start : start + size], more


# --- email templates -------------------------------------------------------------------------------


def _template(self: SESV2Response, name: str) -> dict:
    template = self.sesv2_backend.core_backend.templates.get(name)
    if template is None:
        raise aws_error("NotFoundException", f"Template {name} does not exist.")
    return template


def _store_template(self: SESV2Response, name: str, content: dict, created: datetime, tags: list) -> None:
    self.sesv2_backend.core_backend.templates[name] = {
        "template_name": name,
        "subject_part": content.get("Subject", ""),
        "text_part": content.get("Text", ""),
        "html_part": content.get("Html", ""),
        "Timestamp": created,
        "Tags": tags,
    }


def create_email_template(self: SESV2Response) -> str:
    params = _params(self)
    name = params["TemplateName"]
    if name in self.sesv2_backend.core_backend.templates:
        raise aws_error("AlreadyExistsException", f"Template {name} already exists.")
    _store_template(self, name, params["TemplateContent"], _now(), params.get("Tags", []))
    return "{}"


def get_email_template(self: SESV2Response) -> str:
    template = _template(self, self._get_param("TemplateName"))
    parts = {
        "Subject": template["subject_part"],
        "Text": template["text_part"],
        "Html": template["html_part"],
    }
    return json.dumps(
        {
            "TemplateName": template["template_name"],
            "TemplateContent": {k: v for k, v in parts.items() if v},
            "Tags": template.get("Tags", []),
        }
    )


def update_email_template(self: SESV2Response) -> str:
    template = _template(self, self._get_param("TemplateName"))
    content = _params(self)["TemplateContent"]
    _store_template(self, template["template_name"], content, template["Timestamp"], template.get("Tags", []))
    return "{}"


def delete_email_template(self: SESV2Response) -> str:
    template = _template(self, self._get_param("TemplateName"))
    del self.sesv2_backend.core_backend.templates[template["template_name"]]
    return "{}"


def list_email_templates(self: SESV2Response) -> str:
    templates = sorted(self.sesv2_backend.core_backend.templates.values(), key=lambda t: t["Timestamp"])
    page, more = _page(self, templates, default_size=10)
    metadata = [
        {"TemplateName": t["template_name"], "CreatedTimestamp": t["Timestamp"].timestamp()} for t in page
    ]
    return json.dumps({"TemplatesMetadata": metadata, **more})


# --- sending ----------------------------------------------------------------------------------------


def _template_of(self: SESV2Response, template: dict) -> tuple[str | None, dict]:
    """(name, template as moto stores it) of Template content: a stored template named by TemplateName or
    TemplateArn, or inline TemplateContent (name None)."""
    name = template.get("TemplateName") or template.get("TemplateArn", "").rpartition(":template/")[2]
    if not name and isinstance(template.get("TemplateContent"), dict):
        content = template["TemplateContent"]
        return None, {"template_name": None, "subject_part": content.get("Subject", ""),
                      "text_part": content.get("Text", ""), "html_part": content.get("Html", "")}
    if not name:
        raise aws_error("BadRequestException", "Template must have a TemplateName, a TemplateArn or TemplateContent.")
    return name, _template(self, name)


def _deliver_rendered(core: SESBackend, from_address: str, name: str | None, m: dict) -> str:
    """Hand an accepted templated message to moto; returns its message id. Inline content has no stored
    template in moto, so it goes as a simple email with the rendered subject and body."""
    if name is None:
        return core.send_email(source=from_address, subject=m["subject"] or "", body=m["html"] or m["text"] or "",
                               destinations=_destinations(m)).id
    return core.send_templated_email(source=from_address, template=name, template_data=json.dumps(m["template_data"]),
                                     destinations=_destinations(m)).id


_PARTS = (("subject", "subject_part"), ("html", "html_part"), ("text", "text_part"))


def _render(template: dict, data: dict) -> dict:
    """The message's rendered subject, html and text, and rendering_failure None; or all three None and
    rendering_failure the errorMessage of the Rendering Failure SES publishes for it."""
    rendered: dict = {"rendering_failure": None}
    try:
        for field, part in _PARTS:
            source = template.get(part)
            rendered[field] = rendering.render(str(source), data) if source else None
    except rendering.RenderingError as error:
        return {"subject": None, "html": None, "text": None, "rendering_failure": error.message}
    return rendered


def _message(destination: dict, **fields) -> dict:
    return {
        "to": tuple(destination.get("ToAddresses", [])),
        "cc": tuple(destination.get("CcAddresses", [])),
        "bcc": tuple(destination.get("BccAddresses", [])),
        "template_name": None,
        "template_data": None,
        "subject": None,
        "html": None,
        "text": None,
        "headers": {},
        "rendering_failure": None,
        **fields,
    }


def _mailbox(value: str, what: str) -> tuple[str, str]:
    """(display name, address) of one "address" or "Name <address>" as SES reads it, refusing what it refuses:
    the address must be 7-bit ASCII (SES does not support SMTPUTF8: a Unicode domain goes in Punycode, a display
    name in MIME encoded-words), with a local part and a domain."""
    pairs = getaddresses([value])
    if len(pairs) != 1 or not pairs[0][1]:
        raise aws_error("BadRequestException", f"Illegal address in {what}: {value}")
    name, address = pairs[0]
    local, at, domain = address.rpartition("@")
    if not at or not local:
        raise aws_error("BadRequestException", "Missing final '@domain'")
    if not local.isascii() or any(c.isspace() or ord(c) < 32 for c in local):
        raise aws_error("BadRequestException", "Local address contains control or whitespace")
    if not domain.isascii() or any(c.isspace() or ord(c) < 32 for c in domain):
        raise aws_error("BadRequestException", "Domain contains illegal character")
    return name, address


def _check_sender(self: SESV2Response, params: dict, from_address: str | None) -> str:
    """Check the call's sender, configuration set and contact list; returns the From header as the message carries
    it. The verified identity checked is the address inside a display-name sender ("Name <a@example.com>"). A
    display name sent with characters beyond ASCII, not MIME-encoded, is not refused: SES drops those characters
    (reported in aws/aws-sdk-js#1585), and so does the record here."""
    core = self.sesv2_backend.core_backend
    config_set = params.get("ConfigurationSetName")
    if config_set and config_set not in core.config_sets:
        raise aws_error("NotFoundException", f"Configuration set <{config_set}> does not exist.")
    contact_list = (params.get("ListManagementOptions") or {}).get("ContactListName")
    if contact_list and contact_list not in core.contacts_lists:
        raise aws_error("NotFoundException", f"List with name: {contact_list} doesn't exist.")
    if not from_address:
        raise aws_error("BadRequestException", "FromEmailAddress is required.")
    name, address = _mailbox(from_address, "FromEmailAddress")
    for reply_to in params.get("ReplyToAddresses") or []:
        _mailbox(reply_to, "ReplyToAddresses")
    if not core._is_verified_address(address):
        raise aws_error(
            "MessageRejected",
            "Email address is not verified. The following identities failed the check in region "
            f"{self.region.upper()}: {address}",
        )
    with simulator().lock:
        enabled = simulator().account(self.current_account, self.region).sending_enabled
    if not enabled:
        raise aws_error("SendingPausedException", "Sending is paused for this account.")
    if from_address.isascii():
        return from_address
    return f"{''.join(c for c in name if c.isascii()).strip()} <{address}>"


def _check_counts(message: dict) -> None:
    recipients = message["to"] + message["cc"] + message["bcc"]
    if not recipients:
        raise aws_error("BadRequestException", "Destination must include at least one recipient.")
    if len(recipients) > limits.SES_RECIPIENTS_PER_MESSAGE_LIMIT:
        raise aws_error("BadRequestException", "Recipient count exceeds 50.")


def _check_recipients(message: dict) -> None:
    _check_counts(message)
    if problem := _invalid_address(message):
        raise aws_error("BadRequestException", problem)


def _invalid_address(message: dict) -> str | None:
    """Why the message's first address that is not one is refused; None when every address is one. SES wants
    UserName@[SubDomain.]Domain.TopLevelDomain with a 7-bit ASCII local part (SendBulkTemplatedEmail and
    BulkEmailDestination, SES API reference): stricter than moto's check, which only wants a domain."""
    for address in message["to"] + message["cc"] + message["bcc"]:
        if problem := ses_utils.is_valid_address(address) or _address_problem(parseaddr(address)[1]):
            return f"Invalid email address <{address}>: {problem}."
    return None


def _address_problem(address: str) -> str | None:
    local, _, domain = address.rpartition("@")
    if not local:
        return "Missing local part"
    if not local.isascii():
        return "the local part must be 7-bit ASCII (SES does not support SMTPUTF8)"
    labels = domain.split(".")
    if len(labels) < 2 or not all(labels) or any(c.isspace() for c in address):
        return "not UserName@[SubDomain.]Domain.TopLevelDomain"
    return None


def _accept(
    self: SESV2Response, operation: str, params: dict, from_address: str, messages: list[dict], deliver
):
    """Admit the messages against the quota, hand each to moto (`deliver` returns its message id) and
    record it in the outbox. Returns the records, in order."""
    for message in messages:
        _check_recipients(message)
    sim = simulator()
    with sim.lock:  # read the clock inside: usage must be appended in time order
        now = _now()
        account = sim.account(self.current_account, self.region)
        account.admit(sum(len(m["to"] + m["cc"] + m["bcc"]) for m in messages), now, sim.config)
        records = []
        for message in messages:
            recipients = message["to"] + message["cc"] + message["bcc"]
            records.append(
                SentEmail(
                    message_id=deliver(message),
                    operation=operation,
                    account_id=self.current_account,
                    region=self.region,
                    from_address=from_address,
                    configuration_set=params.get("ConfigurationSetName"),
                    list_management=params.get("ListManagementOptions"),
                    reply_to=tuple(params.get("ReplyToAddresses") or ()),
                    suppressed=tuple(r for r in recipients if parseaddr(r)[1].lower() in account.suppressed),
                    sent_at=now,
                    **message,
                )
            )
        sim.outbox.extend(records)
        feedback = sim.config.feedback
    if feedback is not None:  # SES publishes the events of a message sent with a configuration set
        for record in records:
            feedback.publish(record)
    else:  # no population to answer, but a message that did not render is SES's own answer
        for record in records:
            if record.rendering_failure and record.configuration_set:
                publish_event(record.configuration_set, rendering_failure_record(record), region=record.region,
                              account_id=record.account_id, direct=True)
    return records


def _destinations(message: dict) -> dict[str, list[str]]:
    return {
        "ToAddresses": list(message["to"]),
        "CcAddresses": list(message["cc"]),
        "BccAddresses": list(message["bcc"]),
    }


def send_email(self: SESV2Response) -> str:
    params = _params(self)
    core, content = self.sesv2_backend.core_backend, params["Content"]
    destination, tags = params.get("Destination") or {}, _pairs(params.get("EmailTags"))
    from_address = params.get("FromEmailAddress")
    if "Raw" in content:
        raw = base64.b64decode(content["Raw"]["Data"])
        mime = email.message_from_bytes(raw)
        from_address = from_address or mime["From"]
        if not destination:
            destination = {
                key: [a for _, a in getaddresses(mime.get_all(header, []))]
                for key, header in (("ToAddresses", "To"), ("CcAddresses", "Cc"), ("BccAddresses", "Bcc"))
            }
        message = _message(destination, tags=tags, subject=mime["Subject"], headers=dict(mime.items()))

        def deliver(m: dict) -> str:
            # moto reads the recipients from the MIME headers itself: passing them too duplicates them
            return core.send_raw_email(
                source=from_address, destinations=[], raw_data=raw.decode(errors="replace")
            ).id
    elif "Simple" in content:
        simple = content["Simple"]
        body = simple["Body"].get("Html") or simple["Body"].get("Text") or {"Data": ""}
        message = _message(
            destination, tags=tags, subject=simple["Subject"]["Data"], headers=_pairs(simple.get("Headers")),
            html=simple["Body"].get("Html", {}).get("Data"), text=simple["Body"].get("Text", {}).get("Data"),
        )

        def deliver(m: dict) -> str:
            return core.send_email(
                source=from_address, subject=m["subject"], body=body["Data"], destinations=_destinations(m)
            ).id
    elif "Template" in content:
        name, template = _template_of(self, content["Template"])
        data = _json_object(content["Template"].get("TemplateData"), "TemplateData")
        message = _message(
            destination,
            tags=tags,
            template_name=name,
            template_data=data,
            headers=_pairs(content["Template"].get("Headers")),
            **_render(template, data),
        )

        def deliver(m: dict) -> str:
            return _deliver_rendered(core, from_address, name, m)
    else:
        raise aws_error("BadRequestException", "Content must have Simple, Raw or Template.")
    header = _check_sender(self, params, from_address)
    [record] = _accept(self, "SendEmail", params, header, [message], deliver)
    return json.dumps({"MessageId": record.message_id})


def send_bulk_email(self: SESV2Response) -> str:
    params = _params(self)
    entries, default = params["BulkEmailEntries"], params["DefaultContent"]["Template"]
    if not 1 <= len(entries) <= limits.SES_BULK_DESTINATIONS_LIMIT:
        raise aws_error(
            "BadRequestException",
            f"BulkEmailEntries: {len(entries)} entries, must be 1 to {limits.SES_BULK_DESTINATIONS_LIMIT}.",
        )
    name, template = _template_of(self, default)
    default_data = _json_object(default.get("TemplateData"), "TemplateData")
    messages = []
    for entry in entries:
        replacement = entry.get("ReplacementEmailContent", {}).get("ReplacementTemplate", {})
        # The default data is "a fallback option when no other data is available" (SES API): not merged; an
        # entry's empty object falls back on it too (send-personalized-email-api.html).
        own = (_json_object(replacement["ReplacementTemplateData"], "ReplacementTemplateData")
               if "ReplacementTemplateData" in replacement else {})
        data = own or default_data
        messages.append(
            _message(
                entry["Destination"],
                tags=_pairs(params.get("DefaultEmailTags")) | _pairs(entry.get("ReplacementTags")),
                headers=_pairs(default.get("Headers")) | _pairs(entry.get("ReplacementHeaders")),
                template_name=name,
                template_data=data,
                **_render(template, data),
            )
        )
    from_address = params.get("FromEmailAddress")
    header = _check_sender(self, params, from_address)
    core = self.sesv2_backend.core_backend

    def deliver(m: dict) -> str:
        return _deliver_rendered(core, from_address, name, m)

    for message in messages:
        _check_counts(message)  # refuses the call; an address that is not one refuses its own entry alone
    refused = [_invalid_address(m) for m in messages]
    accepted = [m for m, why in zip(messages, refused, strict=True) if why is None]
    records = iter(_accept(self, "SendBulkEmail", params, header, accepted, deliver))
    results = [{"Status": "INVALID_PARAMETER", "Error": why} if why else
               {"Status": "SUCCESS", "MessageId": next(records).message_id} for why in refused]
    return json.dumps({"BulkEmailEntryResults": results})


def put_account_sending_attributes(self: SESV2Response) -> str:
    """SendingEnabled false pauses every send of the account (SendingPausedException) until it is true again."""
    enabled = _params(self).get("SendingEnabled", True)
    sim = simulator()
    with sim.lock:
        sim.account(self.current_account, self.region).sending_enabled = bool(enabled)
    return "{}"


def test_render_email_template(self: SESV2Response) -> str:
    """The stored template rendered with TemplateData as the MIME message SES would send (RenderedTemplate)."""
    template = _template(self, self._get_param("TemplateName"))
    data = _json_object(_params(self).get("TemplateData"), "TemplateData")
    sim = simulator()
    with sim.lock:  # "You can execute this operation no more than once per second." (API reference)
        now = _now()
        account = sim.account(self.current_account, self.region)
        wall = time.monotonic()
        if sim.config.enforce_rate and account.last_test_render is not None \
                and now - account.last_test_render < timedelta(seconds=1) \
                and not (sim.config.wall_time_passes and wall - account.last_test_render_wall >= 1):
            raise aws_error("TooManyRequestsException", "Too many requests.")
        account.last_test_render, account.last_test_render_wall = now, wall
    rendered = _render(template, data)
    if rendered["rendering_failure"]:
        raise aws_error("BadRequestException", rendered["rendering_failure"])
    return json.dumps({"RenderedTemplate": _mime(rendered, now)})


def _mime(rendered: dict, at: datetime) -> str:
    """A rendered message as MIME: the text and HTML parts as multipart/alternative when it has both."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["Date"] = format_datetime(at)
    message["Subject"] = rendered["subject"] or ""
    message["MIME-Version"] = "1.0"
    parts = [(rendered[field], field.replace("text", "plain")) for field in ("text", "html") if rendered[field]]
    for i, (body, subtype) in enumerate(parts or [("", "plain")]):
        encoding = "7bit" if body.isascii() and all(len(line) <= 998 for line in body.splitlines()) \
            else "quoted-printable"
        add = message.set_content if i == 0 else message.add_alternative
        add(body, subtype=subtype, charset="utf-8", cte=encoding)
    for part in message.iter_parts():
        del part["MIME-Version"]  # the message's header, not each part's
    return message.as_string()


# --- suppression list and account -------------------------------------------------------------------


def _reasons(reasons: list[str]) -> list[str]:
    if unknown := set(reasons) - set(SUPPRESSION_REASONS):
        raise aws_error("BadRequestException", f"Invalid suppression reason(s): {sorted(unknown)}.")
    return reasons


def _suppressed(self: SESV2Response, address: str) -> SuppressedDestination:
    found = simulator().account(self.current_account, self.region).suppressed.get(address.lower())
    if found is None:
        raise aws_error(
            "NotFoundException", f"Email address {address} does not exist on your suppression list."
        )
    return found


def _summary(entry: SuppressedDestination) -> dict:
    return {
        "EmailAddress": entry.email_address,
        "Reason": entry.reason,
        "LastUpdateTime": entry.last_update_time.timestamp(),
    }


def put_suppressed_destination(self: SESV2Response) -> str:
    params = _params(self)
    address, [reason] = params["EmailAddress"], _reasons([params["Reason"]])
    sim = simulator()
    with sim.lock:
        suppressed = sim.account(self.current_account, self.region).suppressed
        suppressed[address.lower()] = SuppressedDestination(address, reason, _now())
    return "{}"


def get_suppressed_destination(self: SESV2Response) -> str:
    entry = _suppressed(self, self._get_param("EmailAddress"))
    return json.dumps({"SuppressedDestination": {**_summary(entry), "Attributes": {}}})


def delete_suppressed_destination(self: SESV2Response) -> str:
    entry = _suppressed(self, self._get_param("EmailAddress"))
    sim = simulator()
    with sim.lock:
        sim.account(self.current_account, self.region).suppressed.pop(entry.email_address.lower(), None)
    return "{}"


def list_suppressed_destinations(self: SESV2Response) -> str:
    reasons = _reasons(self.querystring.get("Reason", [])) or SUPPRESSION_REASONS
    start, end = (self._get_param(key) for key in ("StartDate", "EndDate"))
    sim = simulator()
    with sim.lock:
        entries = [
            e
            for e in sim.account(self.current_account, self.region).suppressed.values()
            if e.reason in reasons
            and (start is None or e.last_update_time >= datetime.fromisoformat(start))
            and (end is None or e.last_update_time <= datetime.fromisoformat(end))
        ]
    page, more = _page(self, sorted(entries, key=lambda e: e.last_update_time), default_size=1000)
    return json.dumps({"SuppressedDestinationSummaries": [_summary(e) for e in page], **more})


def put_account_suppression_attributes(self: SESV2Response) -> str:
    reasons = _reasons(_params(self).get("SuppressedReasons", []))
    sim = simulator()
    with sim.lock:
        sim.account(self.current_account, self.region).suppressed_reasons = list(reasons)
    return "{}"


def get_account(self: SESV2Response) -> str:
    sim = simulator()
    with sim.lock:
        config, account = sim.config, sim.account(self.current_account, self.region)
        sent = account.sent_last_24h(_now())
        reasons = list(account.suppressed_reasons)
        enabled = account.sending_enabled
    return json.dumps(
        {
            "DedicatedIpAutoWarmupEnabled": False,
            "EnforcementStatus": "HEALTHY",
            "ProductionAccessEnabled": config.production_access,
            "SendingEnabled": enabled,
            "SendQuota": {
                "Max24HourSend": float(config.max_24h_send),
                "MaxSendRate": float(config.max_send_rate),
                "SentLast24Hours": float(sent),
            },
            "SuppressionAttributes": {"SuppressedReasons": reasons},
        }
    )


def get_email_identity(self: SESV2Response) -> str:
    name = self._get_param("EmailIdentity")
    identity = self.sesv2_backend.core_backend.email_identities.get(name)
    if identity is None:
        raise aws_error("NotFoundException", f"Email identity {name} does not exist.")
    answer = dict(identity.get_response_object)
    verified = identity.verification_status == "SUCCESS"
    answer["VerifiedForSendingStatus"] = verified
    if identity.identity_type == "DOMAIN" and verified and not identity.dkim_signing_attributes:
        answer["DkimAttributes"] = {**answer.get("DkimAttributes", {}), "SigningEnabled": True, "Status": "SUCCESS",
                                    "SigningAttributesOrigin": "AWS_SES"}
    return json.dumps(answer)


def get_configuration_set(self: SESV2Response) -> str:
    name = self._get_param("ConfigurationSetName")
    config_set = self.sesv2_backend.core_backend.config_sets.get(name)
    if config_set is None:
        raise aws_error("NotFoundException", f"Configuration set <{name}> does not exist.")
    answer = config_set.to_dict_v2()
    options = config_set.enabled if isinstance(config_set.enabled, dict) else {"SendingEnabled": config_set.enabled}
    answer["SendingOptions"] = {"SendingEnabled": options.get("SendingEnabled", True) is not False}
    return json.dumps({k: v for k, v in answer.items() if v is not None})


# --- configuration set event destinations --------------------------------------------------------------

_DESTINATION_KINDS = (
    "KinesisFirehoseDestination",
    "CloudWatchDestination",
    "SnsDestination",
    "EventBridgeDestination",
    "PinpointDestination",
)
_MATCHING_TYPES = {matching for matching, _ in EVENT_TYPES.values()}


def _destinations_of(self: SESV2Response, config_set: str) -> dict[str, dict]:
    """The set's destinations by name (callers hold the simulator's lock)."""
    if config_set not in self.sesv2_backend.core_backend.config_sets:
        raise aws_error("NotFoundException", f"Configuration set <{config_set}> does not exist.")
    account = simulator().account(self.current_account, self.region)
    return account.event_destinations.setdefault(config_set, {})


def _destination(name: str, definition: dict) -> dict:
    types = definition.get("MatchingEventTypes") or []
    if not types or set(types) - _MATCHING_TYPES:
        raise aws_error(
            "BadRequestException", f"MatchingEventTypes must be one or more of {sorted(_MATCHING_TYPES)}."
        )
    kinds = [kind for kind in _DESTINATION_KINDS if definition.get(kind)]
    if len(kinds) != 1:
        raise aws_error("BadRequestException", "An event destination must have exactly one destination.")
    bus = (definition.get("EventBridgeDestination") or {}).get("EventBusArn", "")
    if kinds == ["EventBridgeDestination"] and not bus.endswith(":event-bus/default"):
        raise aws_error("BadRequestException", f"EventBusArn {bus}: only the default event bus is supported.")
    return {
        "Name": name,
        "Enabled": bool(definition.get("Enabled", False)),
        "MatchingEventTypes": list(dict.fromkeys(types)),
        kinds[0]: definition[kinds[0]],
    }


def create_configuration_set_event_destination(self: SESV2Response) -> str:
    params = _params(self)
    name = params["EventDestinationName"]
    destination = _destination(name, params.get("EventDestination") or {})
    with simulator().lock:
        destinations = _destinations_of(self, self._get_param("ConfigurationSetName"))
        if name in destinations:
            raise aws_error("AlreadyExistsException", f"Event destination {name} already exists.")
        if len(destinations) >= MAX_EVENT_DESTINATIONS:
            raise aws_error("LimitExceededException", "Maximum number of event destinations exceeded.")
        destinations[name] = destination
    return "{}"


def get_configuration_set_event_destinations(self: SESV2Response) -> str:
    with simulator().lock:
        destinations = list(_destinations_of(self, self._get_param("ConfigurationSetName")).values())
        return json.dumps({"EventDestinations": destinations})


def _existing_destination(self: SESV2Response) -> tuple[dict[str, dict], str]:
    destinations = _destinations_of(self, self._get_param("ConfigurationSetName"))
    name = self._get_param("EventDestinationName")
    if name not in destinations:
        raise aws_error("NotFoundException", f"Event destination {name} does not exist.")
    return destinations, name


def update_configuration_set_event_destination(self: SESV2Response) -> str:
    definition = _params(self).get("EventDestination") or {}
    with simulator().lock:
        destinations, name = _existing_destination(self)
        destinations[name] = _destination(name, definition)
    return "{}"


def delete_configuration_set_event_destination(self: SESV2Response) -> str:
    with simulator().lock:
        destinations, name = _existing_destination(self)
        del destinations[name]
    return "{}"


# --- install ------------------------------------------------------------------------------------------

_ADDED = {
    f.__name__: f
    for f in (
        create_email_template,
        get_email_template,
        update_email_template,
        delete_email_template,
        list_email_templates,
        send_bulk_email,
        test_render_email_template,
        put_suppressed_destination,
        get_suppressed_destination,
        delete_suppressed_destination,
        list_suppressed_destinations,
        put_account_suppression_attributes,
        get_account,
        put_account_sending_attributes,
        create_configuration_set_event_destination,
        get_configuration_set_event_destinations,
        update_configuration_set_event_destination,
        delete_configuration_set_event_destination,
    )
}
_REPLACED = {"send_email": send_email, "get_email_identity": get_email_identity,
             "get_configuration_set": get_configuration_set}
_USED = (
    (SESV2Response, _TARGET, ("sesv2_backend",)),
    (
        SESBackend,
        "moto.ses.models.SESBackend",
        ("_is_verified_address", "send_email", "send_raw_email", "send_templated_email"),
    ),
    (ses_utils, "moto.ses.utils", ("is_valid_address",)),
)


def _check_moto() -> None:
    for owner, dotted, names in _USED:
        for name in names:
            if not hasattr(owner, name):
                raise MotoDriftError(f"{dotted}.{name}: missing; sesflow's SES v2 patch calls it")
    for name in _REPLACED:
        if not hasattr(SESV2Response, name):
            raise MotoDriftError(f"{_TARGET}.{name}: missing; sesflow's SES v2 patch replaces it")
    for name in _ADDED:
        if getattr(getattr(SESV2Response, name, None), "__module__", __name__) != __name__:
            raise MotoDriftError(f"{_TARGET}.{name}: moto now implements it; compare before replacing it")
    probe = SESBackend("us-east-1", "000000000000")
    for name in ("templates", "config_sets", "contacts_lists"):
        if not isinstance(getattr(probe, name, None), dict):
            raise MotoDriftError(f"moto.ses.models.SESBackend.{name}: no longer a dict on the backend")


def install() -> None:
    """Check moto still looks as the patch expects, then (re)attach the methods. Safe to call again."""
    _check_moto()
    for name, method in (_ADDED | _REPLACED).items():
        setattr(SESV2Response, name, method)
