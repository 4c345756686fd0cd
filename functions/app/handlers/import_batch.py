"""ImportBatchFunction: one batch of an uploaded contacts file (ImportContactsStateMachine's ImportRows Map).

Each row is checked by the file reader's row rules (app.domain.contact_file.parse_row) and imported by app.imports,
the code `sesflow contacts import` runs locally: an import never changes a status or re-subscribes anyone, and a
row that changes nothing writes nothing, so a retried batch is harmless. Its rejected rows go to S3 beside the
upload; its counts are its result (the Map's ResultWriter collects them for FinishImport).
"""

from typing import Any

from app import clock, imports
from app.contracts import ImportBatchInput, ImportBatchResult
from app.domain import contact_file
from app.observability import logger, tracer
from app.settings import settings


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = ImportBatchInput.from_dict(event)
    given = request.BatchInput.request
    options = imports.Options(list_id=given.list_id, source=given.source, actor=given.actor, dry_run=given.dry_run,
                              resubscribe_reason=given.resubscribe_reason)
    config = settings()
    rows = (contact_file.RowProblem(row.line, row.problem, row.fields) if row.problem
            else contact_file.parse_row(row.fields, row.line, file=given.source) for row in request.Items)
    problems: list[contact_file.RowProblem] = []
    tally = imports.import_rows(rows, options, config, clock.now(), reject=problems.append)
    imports.store_rejects(problems, given.import_id, config.manifest_bucket)
    imports.add_progress(given.import_id, tally.rows, config)
    logger.info("import batch", extra={"import_id": given.import_id, "rows": tally.rows, "new_contacts": tally.created,
                                       "invalid": len(problems)})
    return ImportBatchResult.from_dict(tally.to_dict()).to_dict()
