"""MigrateContactsFunction: one call of a segment's loop in MigrateContactsStateMachine.

Scans on from the segment's cursor, PAGES_PER_CALL pages of PAGE_ITEMS items at most, and stops sooner once less
than RESERVE_MS of its 900 s timeout is left (about 10 minutes of work), migrating every page it read whole
(app.migration). Its result is the next call's input: the new cursor, the running counts, and done when the
segment has been read to its end. A failed or timed-out call is retried from the same cursor, which is safe: each
write is conditional, so what was migrated already is not written again.
"""

from typing import Any

from app import migration
from app.contracts import MigrateContactsInput, MigrateContactsResult, MigrationCounts
from app.domain.migration import Counts
from app.observability import logger, tracer
from app.settings import settings

PAGE_ITEMS = 1000  # Scan's Limit: a page is at most this many items (and at most 1 MB)
PAGES_PER_CALL = 10
RESERVE_MS = 300_000  # no new page once less than this is left: a page of 1,000 items takes seconds


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = MigrateContactsInput.from_dict(event)
    cursor, counts, pages = migration.migrate_segment(
        request.segment, request.total_segments, request.cursor or None, run=request.run, dry_run=request.dry_run,
        page_items=PAGE_ITEMS, settings=settings(),
        more=lambda read: read < PAGES_PER_CALL and context.get_remaining_time_in_millis() > RESERVE_MS,
        counts=Counts(**request.counts.to_dict()))
    logger.info("segment progress", extra={"segment": request.segment, "pages": pages, "done": cursor is None,
                                           "dry_run": request.dry_run, **counts.to_dict()})
    return MigrateContactsResult(
        segment=request.segment, total_segments=request.total_segments, run=request.run, dry_run=request.dry_run,
        cursor=cursor or {}, counts=MigrationCounts.from_dict(counts.to_dict()), done=cursor is None, pages=pages,
    ).to_dict()
