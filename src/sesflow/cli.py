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
from importlib import metadata
from pathlib import Path
from typing import Any

from sesflow import campaign_cli, contacts_cli, events_cli, recipient_cli, report, suppression_cli, template_cli
from sesflow.engine.stack import LocalStack
from sesflow.engine.template import TemplateError


def _parameters(pairs: list[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"sesflow: --parameter-overrides takes KEY=VALUE pairs, got {pair!r}")
        values[key] = value
    return values


def served_feedback() -> Any:
    """What the served engine's SES reports back, as SES does for every message sent with a configuration set:
    the mailbox simulator's addresses answer as AWS documents (bounce@, complaint@, suppressionlist@, ooto@,
    success@, and their +label forms), every other address is delivered. Published after the send, as SES
    does, by the server's queue pump (deferred), not inside the sending Lambda's invocation."""
    from sesflow.engine.feedback_model import FeedbackModel, Rates

    return FeedbackModel(rates=Rates(hard_bounce=0, soft_bounce=0, open=0, click=0, complaint=0), deferred=True)


def local_up(args: argparse.Namespace) -> int:
    from sesflow.engine.server import DEFAULT_PORT, EngineServer, ServerError, refuse_if_running
    from sesflow.target import DEFAULT_STATE_FILE

    if (args.port is not None or args.state_file) and not args.serve:
        print("sesflow: --port and --state-file go with --serve", file=sys.stderr)
        return 2
    state_file = Path(args.state_file) if args.state_file else DEFAULT_STATE_FILE
    if args.serve:
        try:
            refuse_if_running(state_file)  # before spending seconds on deployment
        except ServerError as error:
            print(f"sesflow: {error}", file=sys.stderr)
            return 2
    parameters = _parameters(args.parameter_overrides)
    stack = LocalStack(
        template_path=Path(args.template),
        parameters=parameters,
        ses_identities=(parameters.get("SenderIdentity", "example.com"),),
    )
    if args.serve:
        stack.ses_account = {**stack.ses_account, "feedback": served_feedback(), "wall_time_passes": True}
    try:
        stack.up()
    except (TemplateError, OSError) as error:
        print(f"sesflow: {error}", file=sys.stderr)
        return 2
    server = None
    try:
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
                **({"endpoint_url": server.endpoint_url, "state_file": str(state_file)} if server else {}),
            }, indent=2), flush=True)
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
                      f"ooto@, success@simulator.amazonses.com) answer as on AWS; every other address is delivered",
                      flush=True)
        if server:
            server.serve_until_signalled()
            if not args.json:
                print("\nStopped; the local stack and everything in it are gone.")
        return 0
    finally:
        if server:
            server.stop()
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


def events_parse(args: argparse.Namespace) -> int:
    # The very parser the ingest function runs (functions/app is a package of this install).
    from app.domain.feedback import parse_feedback
    from app.errors import FeedbackParseError

    failed = False
    for name in args.files:
        try:
            text = Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            print(f"{name}: error: cannot read it ({getattr(error, 'strerror', None) or error})", file=sys.stderr)
            failed = True
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
    return 1 if failed else 0


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
    up.add_argument("--port", type=int, default=None, help="with --serve: the port (default 4599; 0 picks a free one)")
    up.add_argument("--state-file", default=None,
                    help="with --serve: where commands find the running engine (default: .sesflow/local.json)")
    up.set_defaults(func=local_up)
    down = local.add_parser("down", help="stop the engine `sesflow local up --serve` runs")
    down.add_argument("--state-file", default=None,
                      help="the running engine's state file (default: the nearest .sesflow/local.json)")
    down.add_argument("--timeout", type=float, default=60.0,
                      help="seconds to wait for it to stop (default 60)")
    down.set_defaults(func=local_down)
    campaign_cli.register(commands)
    report.register(commands)  # `sesflow report ID`: the same as `sesflow campaign report ID`
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
        raise SystemExit(f"sesflow demo: --recipients {args.recipients}: at least 100 (a test cohort needs them)")
    scenarios = tuple(demo.SCENARIOS) if args.scenario == "all" else (args.scenario,)
    summary = demo.run_demo(recipients=args.recipients, seed=args.seed, scenarios=scenarios,
                            template=Path(args.template), report_dir=Path(args.report_dir))
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "tables"}, indent=2))
    else:
        demo.print_summary(summary)
    return 0 if demo.clean(summary) else 1


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
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
