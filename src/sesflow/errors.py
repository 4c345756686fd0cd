"""How every sesflow command reports a mistake: one line on stderr, `sesflow: WHERE: what is wrong`, and an exit code
that says whose move it is.

- exit 2, InputError: what was given cannot be used (a file that cannot be read, is not UTF-8, JSON or the right
  shape; an option's value; an address SES would refuse; a list name). Nothing was written or sent.
- exit 1, any other error a command reports (TargetError, LookupError, ValueError): the command understood the
  request and refused it (no such campaign, not resumable, a plan's problems, the engine not running).

argparse's own refusals (an unknown option, a value its `type` refuses) exit 2 as well; the option types below
refuse a value by naming the rule.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

BAD_INPUT = 2
REFUSED = 1


class InputError(ValueError):
    """What the operator gave cannot be used; the message names where (file, line, option, field) and what."""


def report(error: BaseException) -> int:
    """Print `sesflow: <error>` on stderr; the exit code: 2 for an InputError, 1 for any other refusal."""
    print(f"sesflow: {error}", file=sys.stderr)
    return BAD_INPUT if isinstance(error, InputError) else REFUSED


def email_address(given: str, where: str = "") -> str:
    """`given` as contacts and recipients are keyed (the Lambda code's normalize); InputError naming it (and
    `where`, e.g. "--to") when it is not an address SES sends to."""
    from app.domain.addresses import InvalidAddress, normalize

    try:
        return str(normalize(given))
    except InvalidAddress as error:
        raise InputError(address_problem(given, error, where)) from None


def address_problem(given: str, why: Any, where: str = "") -> str:
    """The one wording of a refused address: `[where: ]'x' is not an email address SES sends to (why)`."""
    return f"{where + ': ' if where else ''}{given!r} is not an email address SES sends to ({why})"


def positive_number(text: str) -> float:
    """An argparse type: a number more than 0 (seconds, a rate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text}: a number more than 0")
    return value


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text}: a port is 0 (any free one) to 65535")
    return value
