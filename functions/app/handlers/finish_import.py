"""FinishImportFunction: a contacts import's summary, once its batches are done (ImportContactsStateMachine).

It sums the batches' counts from the ImportRows Map's results in S3 (its ResultWriter manifest), gathers the
batches' rejected rows into one CSV (imports/<id>/rejects.csv, in line order), records the list and the import in
the list's history, and returns the summary the CLI prints.
"""

from typing import Any

from app import clock, contacts, import_results
from app.contracts import FinishImportInput, FinishImportResult
from app.observability import logger, tracer
from app.settings import settings


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = FinishImportInput.from_dict(event)
    given, config, now = request.request, settings(), clock.now()
    tally = import_results.sum_results(request.results.Bucket, request.results.Key)
    rejects = import_results.gather_rejects(given.import_id, config.manifest_bucket)
    summary = FinishImportResult.from_dict({
        "file": given.file, "list": given.list_id, "dry_run": given.dry_run, **tally.to_dict(),
        "rejects_key": rejects})
    if not given.dry_run:
        contacts.register_list(given.list_id, now, config, tally.writes)
        contacts.record_import(given.list_id, given.import_id, summary.to_dict(), given.actor, now, config)
    logger.info("import finished", extra={"import_id": given.import_id, "rows": tally.rows})
    return summary.to_dict()
