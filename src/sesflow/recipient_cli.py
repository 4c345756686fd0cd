"""`sesflow recipient show|reinstate|suppress ADDRESS`: a recipient's lifecycle state and history, and the
operator's two changes, audited. They act on the local engine (`sesflow local up --serve`) or on a deployed
stack (`--stack NAME`), through the Lambda code's own app.recipients, so a change from here is the same
conditional, versioned write with its audit record as one from SES feedback, and it ends a waiting episode."""

from __future__ import annotations

import argparse
import getpass
import json
from typing import Any

from app import recipients

from sesflow.errors import InputError, address_problem, report
from sesflow.target import Target, TargetError, add_target_options, target_of


def normalized(recipients: Any, address: str) -> str:
    """The RecipientsTable key of what the operator typed; InputError naming it (this is no log) when it is not
    an address SES sends to."""
    try:
        return recipients.normalize(address)
    except ValueError as error:
        raise InputError(address_problem(address, error)) from None


def describe(address: str, target: Target) -> dict[str, Any]:
    config = target.lambda_settings()
    address = normalized(recipients, address)
    stored = recipients.read({address}, config)[address]
    if not stored.exists:
        raise LookupError(f"no recipient {address} in {config.recipients_table} ({target.name})")
    state = stored.state
    return {
        "address": address,
        "status": state.status,
        "since": state.status_since and recipients.iso(state.status_since),
        "version": state.version,
        "strikes": len(state.strike_times),
        "strike_times": [recipients.iso(t) for t in state.strike_times],
        "quarantined_until": state.quarantined_until and recipients.iso(state.quarantined_until),
        "episode": stored.episode,
        "episode_waiting": bool(stored.episode_token),
        "reinstated_at": stored.reinstated_at and recipients.iso(stored.reinstated_at),
        "last_change": {"cause": stored.cause, "reason": stored.reason},
        "history": recipients.history(address, config),
    }


def print_recipient(shown: dict[str, Any]) -> None:
    print(f"{shown['address']}: {shown['status']}" + (f" since {shown['since']}" if shown["since"] else "")
          + f" (version {shown['version']})")
    strikes = shown["strikes"]
    print(f"  strikes:  {strikes}" + (f" ({', '.join(shown['strike_times'])})" if strikes else ""))
    if shown["quarantined_until"]:
        print(f"  deadline: quarantined until {shown['quarantined_until']}")
    if shown["episode"]:
        waiting = "waiting" if shown["episode_waiting"] else "starting"
        print(f"  episode:  quarantine-{shown['episode']} ({waiting})")
    if shown["last_change"]["reason"]:
        print(f"  last:     {shown['last_change']['reason']}")
    history = shown["history"]
    print(f"\nHistory ({len(history)}, newest first):" if history else "\nHistory: none")
    for entry in history:
        moved = (f"{entry['from_status']} -> {entry['to_status']}" if "to_status" in entry
                 else f"({entry.get('kind', 'event')}: no change)")
        when = entry.get("recorded_at") or entry["sk"].split("#", 1)[0]
        print(f"  {when}  {moved:<26}  {entry.get('actor', '?'):<20}  {entry.get('reason', '')}")


def recipient(args: argparse.Namespace) -> int:
    try:
        target = target_of(args)
        if args.action == "show":
            shown = describe(args.address, target)
            if args.json:
                print(json.dumps(shown, indent=2))
            else:
                print_recipient(shown)
            return 0
        config = target.lambda_settings()
        address = normalized(recipients, args.address)
        decision = recipients.operator_change(address, args.action, args.reason, config,
                                              actor=f"operator:{args.actor or getpass.getuser()}")
    except (TargetError, LookupError, ValueError) as error:
        return report(error)
    if decision is None:
        print(f"{address}: already {'ACTIVE with no strikes' if args.action == 'reinstate' else 'SUPPRESSED'}; "
              f"nothing changed")
    else:
        print(f"{address}: {decision.from_status} -> {decision.to_status} ({decision.reason})")
    return 0


def register(commands: Any) -> None:
    """Add `recipient show|reinstate|suppress` to the CLI's subcommands."""
    group = commands.add_parser("recipient", help="a recipient's lifecycle: show it, reinstate or suppress it")
    actions = group.add_subparsers(dest="action", required=True)
    for name, text in (("show", "status, strikes, deadline and history"),
                       ("reinstate", "make it ACTIVE with no strikes (the only way out of SUPPRESSED)"),
                       ("suppress", "never send to it again, until reinstated")):
        action = actions.add_parser(name, help=text)
        action.add_argument("address")
        if name == "show":
            action.add_argument("--json", action="store_true", help="print one JSON document")
        else:
            action.add_argument("--reason", required=True, help="why, for the audit record")
            action.add_argument("--actor", default=None, help="who, for the audit record (default: your login)")
        add_target_options(action)
        action.set_defaults(func=recipient)
