"""SES's side of a campaign on the engine: a thread that turns each message the simulated SES accepted into the
feedback events a test wants, published to the feedback queue and ingested through IngestFeedbackFunction while
the campaign sends (the thread also plays Lambda's SQS poller)."""

import json
import threading
from collections.abc import Callable

from sesflow.engine.ses import SentEmail, feedback_record, simulator


class Feedback(threading.Thread):
    def __init__(self, stack, kinds_for: Callable[[SentEmail], list[str]], on_sent: Callable[[int], None] = None):
        super().__init__(daemon=True)
        self.stack, self.kinds_for, self.on_sent = stack, kinds_for, on_sent
        self.done = threading.Event()
        self.seen = 0
        self._lock = threading.Lock()

    def run(self):
        while not self.done.is_set():
            self.step()
            self.done.wait(0.02)

    def step(self):
        sqs, queue = self.stack.client("sqs"), self.stack.outputs["FeedbackQueueUrl"]
        with self._lock:
            outbox = list(simulator().outbox)
            for message in outbox[self.seen:]:
                for kind in self.kinds_for(message):
                    record = feedback_record(kind, message.to[0], self.stack.clock.now(), message.message_id,
                                             tags={k: [v] for k, v in message.tags.items()})
                    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(record))
            self.seen = len(outbox)
        if self.on_sent:
            self.on_sent(len(outbox))
        self.stack.deliver_queues()

    def __enter__(self):
        # SES answers as soon as it has sent: what was sent before a Wait (an evaluation window) is fed back
        # before the Wait moves time on, as it would be during that time on AWS.
        self._before_wait = self.stack.runtime.before_wait
        self.stack.runtime.before_wait = self._step_then_wait
        self.start()
        return self

    def _step_then_wait(self):
        self.step()
        if self._before_wait:
            self._before_wait()

    def __exit__(self, *exc):
        self.done.set()
        self.join()
        self.stack.runtime.before_wait = self._before_wait
        self.step()  # what the last sends caused
