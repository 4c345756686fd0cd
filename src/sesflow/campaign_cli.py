"""`sesflow campaign start|status|pause|resume|cancel`: run and steer campaigns on the local engine
(`sesflow local up --serve`) or a deployed stack (`--stack NAME`), through the Lambda code's own app.* modules.

plan FILE       checks everything the campaign needs before it starts (sesflow/plan.py): the definition, the
                start time, the sender, the configuration set, the account, the audience per variant, the templates
                rendered for a sample of it, the quota, the time and the cost; a problem exits 1. Writes nothing.
start FILE      runs the plan and, when it has no problem, starts one execution of CampaignStateMachine named after
                the campaign (--now: a start_at already past starts now)
test FILE       sends each variant once to --to ADDR[,ADDR...], rendered with --as CONTACT's data or the defaults,
                marked as a test: counted toward no campaign (sesflow/test_send.py)
list            every campaign: status, emails sent, when it started (newest first)
status ID       status, sent per variant, feedback counters (rendering failures among them), the breaker's
                numbers, the failure (SES's code and message), the history, the A/B decision
watch ID        live progress per variant, the rates against the thresholds, the phase, the A/B decision, the
                send rate against its share, elapsed and ETA, why it stopped; waits for one about to start
                (sesflow/watch.py)
pause ID        RUNNING -> PAUSED: batches stop before their next SES call; the execution ends PAUSED
resume ID       PAUSED, HALTED or FAILED -> a new execution from the frozen audience, sending only what was not sent
                (--definition FILE: new thresholds or rate_share; any other change is refused, field by field)
cancel ID       ends the campaign for good
report ID       writes a self-contained HTML report (funnel, rates over the send, decision) and prints its table
                (sesflow/report.py; also `sesflow report ID`)
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from sesflow.campaign_view import read_campaign
from sesflow.errors import InputError, positive_number, report
from sesflow.files import read_json_object
from sesflow.target import Target, TargetError, add_target_options, target_of

# The statuses ResumeCampaign takes back to RUNNING (statemachines/campaign.asl.json), and why the others do not.
RESUMABLE = ("PAUSED", "HALTED", "FAILED")
NOT_RESUMABLE = {
    "RUNNING": "it is sending now: `sesflow campaign watch` follows it",
    "COMPLETED": "every recipient was sent to: a new send is a new campaign, with a new id",
    "CANCELLED": "a cancelled campaign ends for good: a new send is a new campaign, with a new id",
}


def _definition(path: str) -> dict[str, Any]:
    return read_json_object(path, "a campaign definition is a JSON object")


def _modules(target: Target) -> dict[str, Any]:
    settings = target.lambda_settings()
    from app import campaign_control, sends
    from app.domain.campaign import check_resume, parse_campaign
    from app.errors import CampaignDefinitionError

    return {"control": campaign_control, "sends": sends, "parse": parse_campaign, "check_resume": check_resume,
            "definition_error": CampaignDefinitionError, "settings": settings}


def _start(target: Target, definition: dict[str, Any], resume: bool) -> str:
    app = _modules(target)
    try:
        campaign = app["parse"](definition)
    except app["definition_error"] as error:
        raise ValueError(f"the campaign definition is not valid: {error}") from None
    name = f"{campaign.id}-{'resume-' if resume else ''}{int(time.time())}"
    response = target.client("stepfunctions").start_execution(
        stateMachineArn=target.output("CampaignStateMachineArn"), name=name[:80],
        input=json.dumps({**campaign.to_dict(), **({"resume": True} if resume else {})}))
    return response["executionArn"]


def status(target: Target, campaign_id: str) -> dict[str, Any]:
    view = read_campaign(target, campaign_id)
    if view is None:
        raise LookupError(f"no campaign {campaign_id} on {target.name}")
    from app import sends

    stats = view.stats
    return {
        "campaign_id": campaign_id,
        "status": view.item.get("status"),
        "execution_arn": view.item.get("execution_arn"),
        "sent": stats.get("sent", 0),
        "per_variant": {v: {k.split("#")[0]: n for k, n in stats.items() if k.endswith(f"#{v}")}
                        for v in view.variants},
        "feedback": {k: n for k, n in stats.items() if "#" not in k and k != "sent"},
        # accepted by SES, then dropped: a variable the template uses that the message's data lacks
        "rendering_failures": stats.get("rendering_failures", 0),
        "thresholds": view.definition.get("thresholds"),
        "halt": view.halt,
        # the SES error that stopped the send (FAILED): code, message, batch, position, recipient
        "failure": view.failure,
        # every start, halt, pause, resume, failure, cancel and completion, oldest first
        "history": view.history,
        # the execution waits for the send rate or the daily quota until `until`, then runs the phase again
        "waiting": view.deferral,
        "warnings": view.warnings,
        "decision": view.decision,
        # a bandit's reweightings, one per round after the first: the weights and the numbers behind them
        "bandit_rounds": view.bandit_rounds,
        "accounted": sends.summary(campaign_id, view.settings),
        # the recipients SES refused one by one, with SES's status and Error (the first 100)
        "refused": sends.refusals(campaign_id, view.settings),
    }


def campaign(args: argparse.Namespace) -> int:
    try:
        target = target_of(args)
        if args.action == "start":
            definition = _definition(args.file)
            app = _modules(target)
            # The workflow's claim refuses a second run anyway (CampaignAlreadyRunning), but only after it started.
            current = app["control"].read(str(definition.get("id")), app["settings"])[0].get("status")
            if current:
                hint = ("`sesflow campaign resume` continues it" if current in RESUMABLE else
                        "a campaign id runs once: give the new run a new id")
                raise ValueError(f"campaign {definition.get('id')} is already {current} on {target.name}: {hint}")
            from sesflow.plan import make_plan

            found = make_plan(target, definition, now_given=args.now)
            if found.problems:  # nothing started, written or sent
                raise ValueError("; ".join(line.message for line in found.problems) +
                                 f" ({len(found.problems)} problem(s) in the plan: nothing started; "
                                 f"`sesflow campaign plan {args.file}` shows it all)")
            print(found.text())
            print(f"started {_start(target, definition, resume=False)}")
        elif args.action == "plan":
            from sesflow.plan import make_plan, print_plan

            found = make_plan(target, _definition(args.file), now_given=args.now)
            print_plan(found, args.json)
            return 1 if found.problems else 0
        elif args.action == "test":
            from sesflow.test_send import send_tests

            sent = send_tests(target, _definition(args.file), args.to, getattr(args, "as_contact", None),
                              source=args.file)
            for message in sent:
                print(f"sent test of variant {message['variant']} to {message['to']} ({message['message_id']})")
        elif args.action == "list":
            app = _modules(target)
            shown = app["control"].list_campaigns(app["settings"])
            if args.json:
                print(json.dumps(shown, indent=2))
            elif not shown:
                print(f"no campaigns on {target.name} yet: `sesflow campaign start FILE` starts one")
            else:
                print(f"{'campaign':<32} {'status':<10} {'sent':>9}  started")
                for entry in shown:
                    print(f"{entry['campaign_id']:<32} {entry['status'] or '?':<10} {entry['sent']:>9,}  "
                          f"{entry['started_at'] or ''}")
        elif args.action == "status":
            shown = status(target, args.id)
            print(json.dumps(shown, indent=2))
        elif args.action == "report":
            from sesflow.report import write_report

            print(write_report(target, args.id, args.out), end="")
        elif args.action == "watch":
            from sesflow.watch import watch

            watch(target, args.id, interval=args.interval, once=args.once)
        elif args.action in ("pause", "cancel"):
            app = _modules(target)
            to = app["control"].PAUSED if args.action == "pause" else app["control"].CANCELLED
            if not app["control"].change_status(args.id, to, app["settings"],
                                                note={"by": f"sesflow campaign {args.action}"}):
                current = app["control"].read(args.id, app["settings"])[0].get("status")
                if not current:
                    raise LookupError(f"no campaign {args.id} on {target.name}")
                raise LookupError(f"campaign {args.id} is {current}: it cannot be {to.lower()}")
            print(f"campaign {args.id}: {to} (batches in flight stop before their next SES call)")
        elif args.action == "resume":
            app = _modules(target)
            item = app["control"].read(args.id, app["settings"])[0]
            if not item:
                raise LookupError(f"no campaign {args.id} on {target.name}")
            current = item.get("status")
            if current not in RESUMABLE:  # what the workflow's ResumeCampaign would refuse, said before it starts
                raise ValueError(f"campaign {args.id} is {current} on {target.name}: only a PAUSED, HALTED or FAILED "
                                 f"campaign resumes ({NOT_RESUMABLE.get(str(current), 'nothing was started')})")
            stored = json.loads(item["definition"])
            definition = _definition(args.definition) if args.definition else stored
            if definition.get("id") != args.id:
                raise InputError(f"{args.definition}: its id is {definition.get('id')!r}, not {args.id!r}")
            if args.definition:  # what the workflow's ValidateCampaign refuses too, said before anything starts
                try:
                    app["check_resume"](stored, app["parse"](definition))
                except app["definition_error"] as error:
                    raise InputError(f"{args.definition}: {error}") from None
            print(f"resumed {_start(target, definition, resume=True)}")
    except (TargetError, LookupError, ValueError) as error:
        return report(error)
    return 0


def _target_options(parser: argparse.ArgumentParser) -> None:
    add_target_options(parser)


def register(commands: Any) -> None:
    """Add `campaign plan|start|test|list|status|pause|resume|cancel|watch|report` to the CLI's subcommands."""
    group = commands.add_parser("campaign", help="plan, start, inspect and steer campaigns")
    actions = group.add_subparsers(dest="action", required=True)
    plan = actions.add_parser("plan", help="check a definition against the stack and show what it would do; "
                                           "writes and sends nothing")
    plan.add_argument("file", help="definition JSON")
    plan.add_argument("--json", action="store_true", help="print one JSON document")
    plan.add_argument("--now", action="store_true", help="a start_at already past is fine: it would start now")
    _target_options(plan)
    plan.set_defaults(func=campaign)
    test = actions.add_parser("test", help="send each variant once to test addresses, marked as a test")
    test.add_argument("file", help="definition JSON")
    test.add_argument("--to", required=True, help="the addresses, comma-separated")
    test.add_argument("--as", dest="as_contact", default=None,
                      help="render with this contact's data (default: the personalization defaults)")
    _target_options(test)
    test.set_defaults(func=campaign)
    for name, text in (("start", "validate a definition and start its execution"),
                       ("status", "status, counts, breaker, decision"),
                       ("pause", "stop before the next SES call; resume later"),
                       ("resume", "send what was not sent (PAUSED, HALTED or FAILED)"),
                       ("cancel", "end the campaign for good")):
        action = actions.add_parser(name, help=text)
        action.add_argument("file" if name == "start" else "id", help="definition JSON" if name == "start"
                            else "the campaign id")
        if name == "resume":
            action.add_argument("--definition", default=None,
                                help="a new definition (same id) changing only thresholds or rate_share")
        if name == "start":
            action.add_argument("--now", action="store_true",
                                help="start at once even though the definition's start_at is past")
        add_target_options(action)
        action.set_defaults(func=campaign)
    listing = actions.add_parser("list", help="every campaign: status, emails sent, when it started")
    listing.add_argument("--json", action="store_true", help="print one JSON document")
    add_target_options(listing)
    listing.set_defaults(func=campaign)
    watch = actions.add_parser("watch", help="live progress per variant, bounce and complaint rates vs thresholds")
    watch.add_argument("id", help="the campaign id")
    watch.add_argument("--interval", type=positive_number, default=2.0, help="seconds between redraws (default 2)")
    watch.add_argument("--once", action="store_true", help="draw once and exit")
    add_target_options(watch)
    watch.set_defaults(func=campaign)
    from sesflow.report import add_arguments

    report = actions.add_parser("report", help="write the campaign's HTML report and print its essentials")
    add_arguments(report)
    report.set_defaults(func=campaign)
    alias = commands.add_parser("report", help="write a campaign's HTML report and print its essentials "
                                "(the same as `sesflow campaign report`)")
    add_arguments(alias)
    alias.set_defaults(func=campaign, action="report")
