"""Domain errors. The class name is the error name Step Functions' Retry and Catch match."""


class SesflowError(Exception):
    """Base of every error sesflow raises on purpose."""


class CampaignDefinitionError(SesflowError):
    """The campaign definition is invalid; nothing has been written or sent."""


class ManifestError(SesflowError):
    """A batch from the audience manifest is not what the snapshot wrote."""


class SesThrottledError(SesflowError):
    """SES refused a send for the account's rate or daily quota; nothing of the batch was sent."""


class FeedbackParseError(SesflowError):
    """A feedback message is not a shape SES produces, or lacks what an event needs; the text says what and where."""
