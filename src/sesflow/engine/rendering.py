"""SES's template rendering, for the simulated SES: the very module the Lambda code and `sesflow template lint`
use (functions/app/domain/rendering.py, pure Python), so the engine renders as the lint reads."""

from app.domain.rendering import (  # noqa: F401
    MISSING_MESSAGE,
    RenderingError,
    Template,
    compile_template,
    reads,
    render,
)
