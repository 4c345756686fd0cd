"""Fixes to moto (and one to Powertools) that sesflow's workflows need. Each module has `install()`, idempotent,
which first checks that what it patches still looks as expected and raises MotoDriftError naming it if not."""

from __future__ import annotations


class MotoDriftError(RuntimeError):
    """moto no longer has the code a patch replaces: re-check the patch against the new moto."""


def install_all() -> None:
    from sesflow.engine.patches import (
        dynamodb,
        dynamodb_json,
        events,
        iam,
        lambda_bridge,
        metering,
        powertools_metrics,
        sdk_retry,
        sesv2,
        sfn,
        sns,
        sqs,
    )

    sfn.install()
    sesv2.install()
    lambda_bridge.install()
    metering.install()
    sdk_retry.install()
    sqs.install()
    sns.install()
    events.install()
    dynamodb.install()
    dynamodb_json.install()
    powertools_metrics.install()
    iam.install()
