"""Workflow tests: a Lambda that fails inside a Map child leaves only States.ExceedToleratedFailureThreshold in the
parent's history, so the handler's own traceback is printed (pytest shows it with a failing test)."""

import sys
import traceback

import pytest


@pytest.fixture(autouse=True)
def show_send_batch_errors(monkeypatch):
    import app.handlers.send_batch as send_batch

    original = send_batch.lambda_handler

    def handler(event, context):
        try:
            return original(event, context)
        except Exception:
            print(f"SendBatch failed on batch {event.get('batch', {}).get('index')}:\n{traceback.format_exc()}",
                  file=sys.stderr)
            raise

    monkeypatch.setattr(send_batch, "lambda_handler", handler)
