"""Domain errors. The class name is the error name Step Functions' Retry and Catch match."""


class SesflowError(Exception):
    """Base of every error sesflow raises on purpose."""


class CampaignDefinitionError(SesflowError):
    """The campaign definition is invalid; nothing has been written or sent."""


class ContractError(SesflowError):
    """A payload between a state machine and a function is not the shape app.contracts says; the text names the
    field by its path."""


class ManifestError(SesflowError):
    """A batch from the audience manifest is not what the snapshot wrote."""


class ContactFileError(SesflowError):
    """A contacts file cannot be imported at all; the text says `<file>: line N: what is wrong`."""


class FeedbackParseError(SesflowError):
    """A feedback message is not a shape SES produces, or lacks what an event needs; the text says what and where."""


class GovernorBusyError(SesflowError):
    """The account's send rate is booked further ahead than this caller may wait; nothing was reserved. Retry after
    `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DailyQuotaExhaustedError(SesflowError):
    """The account's 24-hour SES quota (less any transactional reserve) is used up; nothing was reserved."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SendRefusedError(SesflowError):
    """SES refused a send in a way no retry can fix (a missing template or configuration set, an unverified sender,
    the account's sending paused, ...). The campaign is already FAILED, with SES's code and message as its
    `failure`; the error ends the Map Run at once rather than spending its retries."""
