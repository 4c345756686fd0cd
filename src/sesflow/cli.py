"""sesflow: the operator command line. `sesflow demo` runs a real campaign on the embedded engine;
`sesflow local up` brings the stack up and shows it (`--serve` keeps it running for other commands, until
`sesflow local down`);
`sesflow campaign plan|start|test|status|watch|pause|resume|cancel|report` checks, runs, test-sends, watches, steers
and reports campaigns;
`sesflow recipient show|reinstate|suppress` looks up and changes a recipient's lifecycle; `sesflow suppression
import|export FILE` suppresses a CSV of addresses (audited) or writes the suppressed ones out; `sesflow events
parse` shows what the feedback parser makes of SES feedback files and `sesflow events replay` sends them into the
stack's feedback queue (the real ingestion path); `sesflow template push|list|diff|preview|lint` keeps the project's
SES templates in templates/, checks them and renders them with SES before a campaign sends them."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from sesflow import (
    campaign_cli,
    contacts_cli,
    events_cli,
    invoke_cli,
    recipient_cli,
    suppression_cli,
    template_cli,
)
from sesflow.errors import InputError, port_number, positive_number, report


def _parameters(pairs: list[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--parameter-overrides takes KEY=VALUE pairs, got {pair!r}")
        values[key] = value
    return values


FEEDBACK_CHOICES = ("none", "default")


def served_feedback(choice: str = "default") -> Any:
    """What the served engine's SES reports back, as SES does for every message sent with a configuration set.
    Always: the mailbox simulator's addresses answer as AWS documents (bounce@, complaint@, suppressionlist@,
    ooto@, success@, and their +label forms). Every other address: "none" delivered, nothing more; "default" the
    demo's population (sesflow.demo.population: its bounce, open, click and complaint rates, per variant); a
    file's name, the rates it gives (feedback_model.model_from_file; raises FeedbackFileError). Published after
    the send, as SES does, by the server's queue pump (deferred), not inside the sending Lambda's invocation."""
    from sesflow.engine.feedback_model import FeedbackModel, Rates, model_from_file

    if choice == "none":
        return FeedbackModel(rates=Rates(hard_bounce=0, soft_bounce=0, open=0, click=0, complaint=0), deferred=True)
    if choice == "default":
        from sesflow.demo import population

        return population(seed=1, deferred=True)
    return model_from_file(choice, deferred=True)


def _feedback_text(choice: str, model: Any) -> str:
    if choice == "none":
        return "every other address is delivered, nothing more (--feedback none)"
    r = model.rates
    rates = (f"hard bounce {r.hard_bounce:.2%}, soft bounce {r.soft_bounce:.2%}, open {r.open:.0%}, "
             f"click {r.click:.1%}, complaint {r.complaint:.3%}")
    variants = f"; variants {', '.join(model.variants)} differ" if model.variants else ""
    source = "the demo's population (--feedback default; none: delivered only; FILE: your rates)" \
        if choice == "default" else f"the rates of {choice}"
    return f"every other address answers as {source}: {rates}{variants}"


def _pace_text(pace: float | None) -> str:
    if pace is None:
        return ("virtual (--pace virtual): Waits, SES's rate and Lambda sleeps end at once and move the clock, "
                "so a campaign is over in seconds (--pace real to watch, pause or cancel it while it sends)")
    if pace == 1:
        return "real (--pace real): SES's rate, Wait states and Lambda sleeps take their time, as on AWS"
    return f"{pace:g} times real time (--pace {pace:g}): SES's rate, Waits and sleeps take 1/{pace:g} of their time"


def local_up(args: argparse.Namespace) -> int:
    from sesflow.engine import data_dir
    from sesflow.engine.clock import parse_pace
    from sesflow.engine.feedback_model import FeedbackFileError
    from sesflow.engine.server import DEFAULT_PORT, EngineServer, ServerError, refuse_if_running
    from sesflow.engine.stack import LocalStack
    from sesflow.engine.template import TemplateError
    from sesflow.target import DEFAULT_STATE_FILE

    serving_only = {"--port": args.port is not None, "--state-file": args.state_file, "--feedback": args.feedback,
                    "--pace": args.pace, "--data": args.data, "--max-send-rate": args.max_send_rate is not None}
    if not args.serve and any(serving_only.values()):
        print(f"sesflow: {', '.join(k for k, v in serving_only.items() if v)} go with --serve", file=sys.stderr)
        return 2
    state_file = Path(args.state_file) if args.state_file else DEFAULT_STATE_FILE
    feedback_choice = args.feedback or "default"
    pace, model, saved = None, None, None
    data = Path(args.data) if args.data else None
    if args.serve:
        try:
            refuse_if_running(state_file)  # before spending seconds on deployment
            pace = parse_pace(args.pace or "virtual")
            model = served_feedback(feedback_choice)
            saved = data_dir.manifest(data) if data else None
            if args.max_send_rate is not None and not args.max_send_rate > 0:
                raise ValueError(f"--max-send-rate {args.max_send_rate:g}: SES's rate is more than 0 a second")
        except (ServerError, ValueError, FeedbackFileError, data_dir.DataDirError) as error:
            print(f"sesflow: {error}", file=sys.stderr)
            return 2
    parameters = _parameters(args.parameter_overrides)
    stack = LocalStack(
        template_path=Path(args.template),
        parameters=parameters,
        ses_identities=(parameters.get("SenderIdentity", "example.com"),),
        pace=pace,
    )
    resumed_at = data_dir.saved_time(saved)
    if resumed_at is not None and resumed_at > datetime.now(UTC):
        stack.start_time = resumed_at  # the engine's time never goes back across a restart
    if args.serve:
        stack.ses_account = {**stack.ses_account, "feedback": model, "wall_time_passes": True,
                             **({"max_send_rate": args.max_send_rate} if args.max_send_rate is not None else {})}
    try:
        stack.up()
    except (TemplateError, OSError) as error:
        print(f"sesflow: {error}", file=sys.stderr)
        return 2
    server = None
    loaded = None
    try:
        if saved is not None:
            try:
                loaded = data_dir.load(stack, data, saved)
            except (data_dir.DataDirError, OSError) as error:
                print(f"sesflow: {error}", file=sys.stderr)
                return 2
        if args.serve:
            try:
                port = DEFAULT_PORT if args.port is None else args.port
                server = EngineServer(stack, port=port, state_file=state_file).start()
            except ServerError as error:
                print(f"sesflow: {error}", file=sys.stderr)
                return 2
        if args.json:
            print(json.dumps({
                "template": str(args.template),
                "stack_name": stack.stack_name,
                "up_seconds": round(stack.up_seconds, 3),
                "resources": [
                    {"logical_id": d.logical_id, "type": d.type, "physical_id": d.physical_id,
                     **({"skipped": d.skipped} if d.skipped else {})}
                    for d in stack.deployed
                ],
                "queue_triggers": [t.__dict__ for t in stack.triggers],
                "outputs": stack.outputs,
                **({"endpoint_url": server.endpoint_url, "state_file": str(state_file), "feedback": feedback_choice,
                    "pace": "virtual" if pace is None else pace,
                    **({"data": str(data), "loaded": loaded} if data else {})} if server else {}),
            }, indent=2, default=str), flush=True)
        else:
            created = [d for d in stack.deployed if not d.skipped]
            skipped = [d for d in stack.deployed if d.skipped]
            print(f"Local stack {stack.stack_name} up from {args.template} in {stack.up_seconds:.2f} s "
                  f"(moto, in-process; no AWS account, no Docker)\n")
            print(f"Created {len(created)} resources:")
            width = max(len(d.logical_id) for d in stack.deployed)
            for d in created:
                print(f"  {d.logical_id:<{width}}  {d.type:<32}  {d.physical_id}")
            for t in stack.triggers:
                print(f"  {'(trigger)':<{width}}  {'SQS -> Lambda':<32}  {t.queue_arn.rsplit(':', 1)[-1]} -> "
                      f"{t.function} (batch {t.batch_size}{', partial failures' if t.report_item_failures else ''})")
            if skipped:
                print(f"\nSkipped {len(skipped)} (nothing locally observable):")
                for d in skipped:
                    print(f"  {d.logical_id:<{width}}  {d.type:<32}  {d.skipped}")
            print("\nOutputs:")
            for key, value in stack.outputs.items():
                print(f"  {key} = {value}")
            if server:
                print(f"\nServing on {server.endpoint_url} (loopback only) until Ctrl-C or `sesflow local down`; "
                      f"state file {state_file}\n"
                      f"  sesflow commands run in this folder or below find it there; any other AWS tool or SDK: "
                      f"AWS_ENDPOINT_URL={server.endpoint_url}, any credentials, region {stack.region}\n"
                      f"  SES feedback: the mailbox simulator's addresses (bounce@, complaint@, suppressionlist@, "
                      f"ooto@, success@simulator.amazonses.com) answer as on AWS; "
                      f"{_feedback_text(feedback_choice, model)}\n"
                      f"  Time: {_pace_text(pace)}; SES sends at most "
                      f"{stack.ses_account['max_send_rate']:g} a second (--max-send-rate)", flush=True)
                if data:
                    print(f"  Data: {_data_text(loaded, data)}", flush=True)
        if server:
            server.serve_until_signalled()
            if not args.json:
                print("\nStopped; " + ("saving the engine's state..." if data else
                                       "the local stack and everything in it are gone."), flush=True)
        return 0
    finally:
        if server:
            server.stop()
            if data:
                _save_data(stack, data, quiet=args.json)
        stack.down()


def local_down(args: argparse.Namespace) -> int:
    """Stop the engine `sesflow local up --serve` runs: SIGTERM to its pid (it stops serving, removes its state file
    and brings its stack down, as on Ctrl-C), then wait until its state file is gone and its port is closed."""
    import time

    from sesflow.target import EngineState, find_state_file, pid_alive

    state_file = Path(args.state_file) if args.state_file else find_state_file()
    state = EngineState.read(state_file)
    if state is None:
        print(f"sesflow: no local engine is running (no state file at {state_file})", file=sys.stderr)
        return 1
    if state.status() is None:  # the pid is gone, or the port answers as another process: never signal it
        state_file.unlink(missing_ok=True)
        print(f"sesflow: no local engine is running (removed {state_file}, left by one that stopped)",
              file=sys.stderr)
        return 1
    try:
        os.kill(state.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    except PermissionError:
        print(f"sesflow: the local engine at {state.endpoint_url} (pid {state.pid}) is another user's: "
              f"not allowed to stop it", file=sys.stderr)
        return 1
    deadline = time.monotonic() + args.timeout
    while True:
        answering = state.status(timeout=0.5) is not None
        if not answering and not state_file.exists():
            break
        if not answering and not pid_alive(state.pid):  # it ended before it could remove its own file
            current = EngineState.read(state_file)
            if current is not None and current.pid == state.pid:
                state_file.unlink(missing_ok=True)
            break
        if time.monotonic() > deadline:
            print(f"sesflow: the local engine at {state.endpoint_url} (pid {state.pid}) did not stop within "
                  f"{args.timeout:g} s: `kill -9 {state.pid}` ends it (then remove {state_file})", file=sys.stderr)
            return 1
        time.sleep(0.1)
    print(f"stopped the local engine at {state.endpoint_url} (pid {state.pid}); its stack and everything in it "
          f"are gone")
    return 0


def _data_text(loaded: dict[str, Any] | None, data: Path) -> str:
    if loaded is None:
        return f"{data} is new: the engine's state is written there when it stops (Ctrl-C)"
    return (f"loaded from {data}: {_counted(loaded)}; written back there when it stops (Ctrl-C)")


def _counted(counts: dict[str, Any]) -> str:
    return (f"{sum(counts['items'].values()):,} items in {len(counts['items'])} tables, "
            f"{sum(counts['objects'].values()):,} S3 objects, {counts['templates']} SES templates, "
            f"{counts['suppressed']} on the SES suppression list")


def _save_data(stack: Any, data: Path, quiet: bool) -> None:
    from sesflow.engine import data_dir

    running = []
    sfn = stack.client("stepfunctions")
    for machine in sfn.list_state_machines()["stateMachines"]:
        running += [e["name"] for e in sfn.list_executions(stateMachineArn=machine["stateMachineArn"],
                                                           statusFilter="RUNNING")["executions"]]
    try:
        counts = data_dir.save(stack, data)
    except (data_dir.DataDirError, OSError) as error:
        print(f"sesflow: the engine's state was NOT saved: {error}", file=sys.stderr)
        return
    if not quiet:
        print(f"Saved to {data}: {_counted(counts)}.")
    if running:
        print(f"sesflow: {len(running)} executions were running and do not survive a restart "
              f"({', '.join(running[:5])}{', ...' if len(running) > 5 else ''}); the items they wrote are kept as they "
              f"were: a campaign that was sending stays RUNNING with no execution (pause one before stopping), a "
              f"quarantined recipient's rest is no longer timed", file=sys.stderr)


def events_parse(args: argparse.Namespace) -> int:
    # The very parser the ingest function runs (functions/app is a package of this install).
    from app.domain.feedback import parse_feedback
    from app.errors import FeedbackParseError

    from sesflow.files import read_text

    failed, unreadable = False, False
    for name in args.files:
        try:
            text = read_text(name)
            if not text.strip():
                raise InputError(f"{name}: empty: it needs SES feedback (a message body, a Lambda event, JSON Lines)")
        except InputError as error:  # said as every command says it; the other files are still parsed
            report(error)
            unreadable = True
            continue
        try:
            found = events_cli.split(text)
        except ValueError as error:
            print(f"{name}: error: {error}", file=sys.stderr)
            failed = True
            continue
        for label, message in found:
            where = f"{label}: " if label else ""
            try:
                result = parse_feedback(message)
            except FeedbackParseError as error:
                print(f"{name}: error: {where}{error}", file=sys.stderr)
                failed = True
                continue
            if result.control:
                print(json.dumps({"kind": "sns_control", "control": result.control, "file": name}))
            for event in result.events:
                print(json.dumps({**event.to_dict(), "file": name}))
    return 2 if unreadable else 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sesflow", description=__doc__)
    parser.add_argument("--version", action="version", version=f"sesflow {metadata.version('sesflow')}")
    commands = parser.add_subparsers(dest="command", required=True)
    local = commands.add_parser("local", help="the embedded local engine").add_subparsers(dest="action", required=True)
    up = local.add_parser("up", help="deploy template.yaml into the embedded engine and print what it created")
    up.add_argument("--template", default="template.yaml", help="the SAM template (default: template.yaml)")
    up.add_argument("--parameter-overrides", nargs="*", default=[], metavar="KEY=VALUE",
                    help="template parameters, as with sam deploy")
    up.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    up.add_argument("--serve", action="store_true",
                    help="keep the stack running on 127.0.0.1 for other commands until Ctrl-C or `sesflow local down` "
                         "(default: print, exit)")
    up.add_argument("--port", type=port_number, default=None,
                    help="with --serve: the port (default 4599; 0 picks a free one)")
    up.add_argument("--state-file", default=None,
                    help="with --serve: where commands find the running engine (default: .sesflow/local.json)")
    up.add_argument("--feedback", default=None, metavar="none|default|FILE",
                    help="with --serve: what SES reports back for addresses other than the mailbox simulator's: "
                         "none (delivered), default (the demo's population: bounces, opens, clicks, complaints), "
                         "or a JSON file of rates (docs/feedback-population.json) (default: default)")
    up.add_argument("--pace", default=None, metavar="virtual|real|N",
                    help="with --serve: virtual (waits end at once), real (SES's rate, Waits and sleeps take wall "
                         "time, as on AWS) or N (N times faster than real) (default: virtual)")
    up.add_argument("--max-send-rate", type=float, default=None, metavar="N",
                    help="with --serve: the simulated SES account's MaxSendRate, emails a second (default: 14); "
                         "out of the sandbox AWS sets it per account")
    up.add_argument("--data", default=None, metavar="DIR",
                    help="with --serve: keep the engine's tables, S3 objects, SES templates and suppression list in "
                         "DIR: loaded at start if DIR holds them, written there at stop")
    up.set_defaults(func=local_up)
    down = local.add_parser("down", help="stop the engine `sesflow local up --serve` runs")
    down.add_argument("--state-file", default=None,
                      help="the running engine's state file (default: the nearest .sesflow/local.json)")
    down.add_argument("--timeout", type=positive_number, default=60.0,
                      help="seconds to wait for it to stop (default 60)")
    down.set_defaults(func=local_down)
    invoke_cli.register(commands)  # `sesflow invoke FUNCTION -e EVENT`: sam local invoke on the engine
    campaign_cli.register(commands)
    recipient_cli.register(commands)
    suppression_cli.register(commands)
    contacts_cli.register(commands)
    template_cli.register(commands)
    events = commands.add_parser("events", help="SES feedback events").add_subparsers(dest="action", required=True)
    parse = events.add_parser("parse", help="print the normalized events the feedback parser makes of each file, "
                              "one JSON object per line; unusable input is reported on stderr and exits 1")
    parse.add_argument("files", nargs="+", metavar="FILE",
                       help="a queue message body (SNS, SNS raw, EventBridge), a Lambda SQS or SNS event, JSON "
                            "Lines, or JSON records back to back (Firehose's objects in S3)")
    parse.set_defaults(func=events_parse)
    events_cli.register(events)
    demo = commands.add_parser("demo", help="run real campaigns on the embedded engine and report them")
    demo.add_argument("--recipients", type=int, default=10_000, help="audience size (default 10000)")
    demo.add_argument("--scenario", choices=("all", "winner", "spike"), default="all",
                      help="winner: test-then-winner; spike: a complaint spike halts it, the operator resumes it "
                           "(default: both, in that order, on one audience)")
    demo.add_argument("--seed", type=int, default=1, help="makes the audience and its feedback reproducible")
    demo.add_argument("--template", default="template.yaml", help="the SAM template (default: template.yaml)")
    demo.add_argument("--report-dir", default=".sesflow/reports", help="where the HTML reports go")
    demo.add_argument("--json", action="store_true", help="print one JSON summary instead of tables")
    demo.set_defaults(func=run_demo)
    return parser


def run_demo(args: argparse.Namespace) -> int:
    from sesflow import demo

    if args.recipients < 100:
        raise InputError(f"demo: --recipients {args.recipients}: at least 100 (a test cohort needs them)")
    scenarios = tuple(demo.SCENARIOS) if args.scenario == "all" else (args.scenario,)
    summary = demo.run_demo(recipients=args.recipients, seed=args.seed, scenarios=scenarios,
                            template=Path(args.template), report_dir=Path(args.report_dir))
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "tables"}, indent=2))
    else:
        demo.print_summary(summary)
    return 0 if demo.clean(summary) else 1


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit code (sesflow.errors: 2 bad usage or input, 1 refused, 0 done)."""
    import botocore.exceptions

    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except InputError as error:  # what a command did not catch itself: the same line, the same code
        return report(error)
    except botocore.exceptions.ClientError as error:  # an AWS refusal no command expected: its code and message
        problem = error.response.get("Error", {})
        return report(RuntimeError(f"AWS refused it: {problem.get('Code', 'error')}: "
                                   f"{problem.get('Message') or error}"))
    except botocore.exceptions.BotoCoreError as error:  # the endpoint went away, credentials expired...
        return report(RuntimeError(f"cannot reach AWS or the local engine: {error}"))
    except BrokenPipeError:
        # The reader went away (`sesflow ... | head`): stop quietly, as other command-line tools do. stdout is
        # pointed at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool its pipe's reader closed
    except KeyboardInterrupt:
        print("sesflow: interrupted", file=sys.stderr)
        return 130  # 128 + SIGINT


if __name__ == "__main__":
    sys.exit(main())
