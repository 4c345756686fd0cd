"""Resource names from the environment the template gives each function, as a typed object.

Read per invocation (it is cheap), so a warm module never keeps another stack's names."""

from __future__ import annotations

import os
from dataclasses import dataclass

from app.domain.frequency import Policy


@dataclass(frozen=True)
class Settings:
    recipients_table: str
    campaigns_table: str
    sends_table: str
    events_table: str
    manifest_bucket: str
    alert_topic_arn: str
    configuration_set: str
    feedback_dlq_url: str | None  # IngestFeedbackFunction only
    lifecycle_state_machine_arn: str | None  # IngestFeedbackFunction only
    lifecycle_policy: str | None  # IngestFeedbackFunction only: JSON overrides of the shipped policy
    probation_configuration_set: str | None = None  # for recipients in RECOVERY; None: configuration_set
    # The template's AllowedConfigurationSets: the sets of the team's own a campaign may name.
    allowed_configuration_sets: tuple[str, ...] = ()
    memberships_table: str = ""  # contacts on lists (docs/contacts.md)
    # The template's FrequencyCapEmails / FrequencyCapDays: the account's marketing frequency cap (0: none).
    frequency_cap: Policy = Policy()

    @property
    def campaign_configuration_sets(self) -> frozenset[str]:
        """Every configuration set SendBatchFunction's policy lets it send through: a campaign may name these."""
        own = (self.configuration_set, self.probation_configuration_set, *self.allowed_configuration_sets)
        return frozenset(name for name in own if name)


def settings() -> Settings:
    env = os.environ
    return Settings(
        recipients_table=env["RECIPIENTS_TABLE"],
        campaigns_table=env["CAMPAIGNS_TABLE"],
        sends_table=env["SENDS_TABLE"],
        events_table=env["EVENTS_TABLE"],
        manifest_bucket=env["MANIFEST_BUCKET"],
        alert_topic_arn=env["ALERT_TOPIC_ARN"],
        configuration_set=env["CONFIGURATION_SET"],
        feedback_dlq_url=env.get("FEEDBACK_DLQ_URL"),
        lifecycle_state_machine_arn=env.get("LIFECYCLE_STATE_MACHINE_ARN"),
        lifecycle_policy=env.get("LIFECYCLE_POLICY"),
        probation_configuration_set=env.get("PROBATION_CONFIGURATION_SET"),
        memberships_table=env["MEMBERSHIPS_TABLE"],
        frequency_cap=Policy(int(float(env.get("FREQUENCY_CAP_EMAILS") or 0)),
                             int(float(env.get("FREQUENCY_CAP_DAYS") or 0))),
        allowed_configuration_sets=tuple(
            name.strip() for name in env.get("ALLOWED_CONFIGURATION_SETS", "").split(",") if name.strip()),
    )
