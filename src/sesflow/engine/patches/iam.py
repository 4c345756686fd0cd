"""IAM at run time: each AWS call a function or a state machine makes is checked against its role.

moto 5.2.5 can enforce IAM only per action (every resource is "*" to it), so the engine evaluates the
template's policies itself (sesflow.engine.iam). Two patches:

- botocore's BaseClient._make_api_call: a call made while a principal is acting (sesflow.engine.iam.acting_as)
  is mapped to its IAM actions and resource ARNs and refused, before it reaches moto, with the error the
  service answers (AccessDeniedException, S3's AccessDenied 403, SNS's AuthorizationError...) as a real
  botocore ClientError of the client's own exception class. The client method itself is patched rather than
  an event hook: app.clients caches its clients for the process, and a client built before a hook was
  registered on its session would never see it.
- moto's Step Functions interpreter: a Task's service call (and .sync polling), and a Map's ItemReader, are
  made as the execution's state machine role. A lambda:invoke Task is the state machine's
  lambda:InvokeFunction; the handler's own calls are then the function's (the Lambda bridge acts as it).
  A Distributed Map starts its children with states:StartExecution on its own state machine: without it the
  Map Run does not start and the state fails with States.Runtime.
- A denied optimized DynamoDB or Lambda Task fails as DynamoDB.AmazonDynamoDBException or
  Lambda.AWSLambdaException (the cause names AccessDeniedException); an aws-sdk Task as <Service>.<Service>Exception
  (DynamoDb.DynamoDbException), as moto's interpreter names an error its botocore model does not declare.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import botocore.client
from moto.stepfunctions.parser.api import HistoryEventType
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (  # noqa: E501
    DistributedIterationComponent,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb import (
    StateTaskServiceDynamoDB,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
    StateTaskServiceLambda,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
from moto.stepfunctions.parser.asl.eval.environment import Environment

from sesflow.engine import iam, runtime
from sesflow.engine.patches.sfn import _failure, _original, _patch

_installed = False
_install_lock = threading.Lock()


def install() -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        _patch_client()
        _patch_state_machine_calls()
        _patch_task_error_names()
        _installed = True


def check(client: Any, operation_name: str, api_params: dict[str, Any]) -> None:
    """Raise the service's access-denied ClientError if the acting principal may not make this call."""
    principal = iam.current()
    if principal is None:
        return
    model = client.meta.service_model
    service = model.service_name
    for action, resource in iam.needs(service, operation_name, api_params, client.meta.region_name,
                                      model.signing_name):
        decision = principal.role.decide(action, resource)
        if decision != iam.ALLOWED:
            message = iam.denial_message(principal.role, principal.session, action, resource, decision)
            parsed = iam.denial_response(service, message, str(uuid.uuid4()))
            error = client.exceptions.from_code(parsed["Error"]["Code"])(parsed, operation_name)
            error.sesflow_access_denied = True
            raise error


def _patch_client() -> None:
    original = _original(botocore.client.BaseClient, "_make_api_call", "self._make_request(",
                         params=("self", "operation_name", "api_params"))

    def _make_api_call(self, operation_name: str, api_params: dict[str, Any]) -> Any:
        if iam.current() is not None and not iam.is_operators(self):
            check(self, operation_name, api_params)
        return original(self, operation_name, api_params)

    _patch(botocore.client.BaseClient, "_make_api_call", original, _make_api_call)


def _state_machine(env: Environment) -> tuple[iam.Role | None, str, str]:
    """The role of the execution's state machine, its session name (the execution's name) and its ARN."""
    context = env.states.context_object.context_object_data
    machine = context["StateMachine"]
    name = str(machine["Name"]).split("/", 1)[0]  # a Distributed Map child is <machine>/<label>
    arn = str(machine["Id"]).split("/", 1)[0]
    return runtime.current().iam.state_machines.get(name), str(context["Execution"]["Name"]), arn


def _as_state_machine(original: Any) -> Any:
    def _eval_execution(self, env: Environment) -> None:
        role, session, _ = _state_machine(env)
        with iam.acting_as(role, session):
            return original(self, env)

    return _eval_execution


def _patch_state_machine_calls() -> None:
    for owner in (StateTaskService, StateTaskLambda):
        original = _original(owner, "_eval_execution", params=("self", "env"))
        _patch(owner, "_eval_execution", original, _as_state_machine(original))

    original = _original(StateMap, "_eval_execution", "self.item_reader", params=("self", "env"))

    def map_eval_execution(self, env: Environment) -> None:
        role, session, arn = _state_machine(env)
        if role is not None and isinstance(self.iteration_component, DistributedIterationComponent):
            decision = role.decide("states:StartExecution", arn)
            if decision != iam.ALLOWED:
                raise _failure(env, StatesErrorNameType.StatesRuntime,
                               "The Map Run could not start its child executions: "
                               + iam.denial_message(role, session, "states:StartExecution", arn, decision),
                               HistoryEventType.MapRunFailed)
        with iam.acting_as(role, session):
            return original(self, env)

    _patch(StateMap, "_eval_execution", original, map_eval_execution)


# The optimized integrations report a service's error through the AWS SDK for Java v1 (their cause reads
# "(Service: AmazonDynamoDBv2; Status Code: 400; Error Code: ...; Proxy: null)"), which raises an error code
# its model does not declare, such as AccessDeniedException, as the service's generic exception.
_GENERIC_ERRORS = {StateTaskServiceDynamoDB: "DynamoDB.AmazonDynamoDBException",
                   StateTaskServiceLambda: "Lambda.AWSLambdaException"}


def _patch_task_error_names() -> None:
    for owner, generic in _GENERIC_ERRORS.items():
        original = _original(owner, "_error_cause_from_client_error", "Proxy: null", params=("client_error",))

        def error_cause(client_error: Any, original: Any = original, generic: str = generic) -> tuple[str, str]:
            error, cause = original(client_error)
            return (generic if getattr(client_error, "sesflow_access_denied", False) else error), cause

        _patch(owner, "_error_cause_from_client_error", original, error_cause)
