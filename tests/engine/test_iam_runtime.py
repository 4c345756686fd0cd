"""IAM on the engine: every call a function or a state machine makes is checked against its role, as on AWS.

A role is what SAM builds from the resource's Policies (sesflow.engine.iam); a denied call fails with the
service's own access-denied error, naming the assumed role, the action and the resource. Calls the test makes
itself are the operator's and are not checked.
"""

import json

import pytest

from sesflow.engine import stack as stack_module
from sesflow.engine.stack import LocalStack
from sesflow.engine.template import ACCOUNT_ID
from tests.conftest import ROOT, SENDER_DOMAIN
from tests.contacts import add_contacts
from tests.engine.test_stack import PROBE, write_template

TABLE = "{BillingMode: PAY_PER_REQUEST, AttributeDefinitions: [{AttributeName: id, AttributeType: S}], " \
        "KeySchema: [{AttributeName: id, KeyType: HASH}]}"


def put_item_task(resource: str) -> str:
    return json.dumps({"StartAt": "Put", "States": {"Put": {
        "Type": "Task", "Resource": resource, "End": True,
        "Parameters": {"TableName": "${Table}", "Item": {"id": {"S": "from-the-machine"}}}}}})


@pytest.fixture
def probe(tmp_path):
    invoke = json.dumps({"StartAt": "Call", "States": {"Call": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True, "OutputPath": "$.Payload",
        "Parameters": {"FunctionName": "${Caller}", "Payload.$": "$"}}}})
    fan_out = json.dumps({"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "End": True, "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}}}})
    path = write_template(tmp_path, f"""
        Table: {{Type: AWS::DynamoDB::Table, Properties: {TABLE}}}
        Other: {{Type: AWS::DynamoDB::Table, Properties: {TABLE}}}
        Bucket: {{Type: AWS::S3::Bucket}}
        Topic: {{Type: AWS::SNS::Topic}}
        Queue: {{Type: AWS::SQS::Queue}}
        Secret: {{Type: AWS::SecretsManager::Secret, Properties: {{SecretString: s3cr3t}}}}
        Caller:
          Type: AWS::Serverless::Function
          Properties:
            CodeUri: {PROBE}
            Handler: engine_probe_iam.call
            Runtime: python3.11
            Policies:
              - DynamoDBReadPolicy: {{TableName: !Ref Table}}
              - Statement:
                  - {{Effect: Allow, Action: "dynamodb:*", Resource: !GetAtt Other.Arn}}
                  - {{Effect: Deny, Action: dynamodb:GetItem, Resource: !GetAtt Other.Arn}}
        WrittenRole:
          Type: AWS::IAM::Role
          Properties:
            RoleName: written-role
            ManagedPolicyArns: [arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]
            Policies:
              - PolicyName: write
                PolicyDocument:
                  Statement: [{{Effect: Allow, Action: dynamodb:PutItem, Resource: !GetAtt Table.Arn}}]
        RoleCaller:
          Type: AWS::Serverless::Function
          Properties:
            CodeUri: {PROBE}
            Handler: engine_probe_iam.call
            Runtime: python3.11
            Role: !GetAtt WrittenRole.Arn
            Policies: [DynamoDBReadPolicy: {{TableName: !Ref Table}}]  # SAM ignores Policies when Role is given
        PutMachine:
          Type: AWS::Serverless::StateMachine
          Properties:
            Definition: {put_item_task("arn:aws:states:::dynamodb:putItem")}
            DefinitionSubstitutions: {{Table: !Ref Table}}
            Policies: [DynamoDBReadPolicy: {{TableName: !Ref Table}}]
        SdkPutMachine:
          Type: AWS::Serverless::StateMachine
          Properties:
            Definition: {put_item_task("arn:aws:states:::aws-sdk:dynamodb:putItem")}
            DefinitionSubstitutions: {{Table: !Ref Table}}
            Policies: [DynamoDBReadPolicy: {{TableName: !Ref Table}}]
        FanOutMachine:
          Type: AWS::Serverless::StateMachine
          Properties:
            Definition: {fan_out}
            Policies: [DynamoDBReadPolicy: {{TableName: !Ref Table}}]
        UninvitedMachine:
          Type: AWS::Serverless::StateMachine
          Properties:
            Definition: {invoke}
            DefinitionSubstitutions: {{Caller: !Ref Caller}}
            Policies: [DynamoDBCrudPolicy: {{TableName: !Ref Table}}]
        DelegatingMachine:
          Type: AWS::Serverless::StateMachine
          Properties:
            Definition: {invoke}
            DefinitionSubstitutions: {{Caller: !Ref Caller}}
            Policies:
              - LambdaInvokePolicy: {{FunctionName: !Ref Caller}}
              - DynamoDBCrudPolicy: {{TableName: !Ref Table}}
    """)
    with LocalStack(template_path=path) as up:
        yield up


def call(stack, service, operation, function="Caller", **params):
    """The function makes this call; returns its outcome ("ok", or the error botocore raised)."""
    response = stack.client("lambda").invoke(
        FunctionName=stack.physical_id(function),
        Payload=json.dumps({"service": service, "operation": operation, "params": params}))
    assert "FunctionError" not in response
    return json.loads(response["Payload"].read())


def assumed(stack, logical_id, session):
    return f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{stack.stack_name}-{logical_id}Role/{session}"


def table_arn(stack, logical_id):
    return stack.resource(logical_id).attributes["Arn"]


def test_a_call_its_policy_grants_succeeds_when_the_function_makes_it(probe):
    assert call(probe, "dynamodb", "get_item", TableName=probe.physical_id("Table"), Key={"id": {"S": "x"}}) == "ok"
    assert call(probe, "dynamodb", "put_item", TableName=probe.physical_id("Other"), Item={"id": {"S": "x"}}) == "ok"


def test_a_call_its_policy_lacks_fails_with_access_denied_naming_role_action_and_resource(probe):
    outcome = call(probe, "dynamodb", "put_item", TableName=probe.physical_id("Table"), Item={"id": {"S": "x"}})

    function = probe.physical_id("Caller")
    arn = table_arn(probe, "Table")
    assert outcome == {
        "class": "ClientError", "code": "AccessDeniedException", "status": 400,
        "message": f"User: {assumed(probe, 'Caller', function)} is not authorized to perform: dynamodb:PutItem on "
                   f"resource: {arn} because no identity-based policy allows the dynamodb:PutItem action",
    }
    assert probe.client("dynamodb").get_item(TableName=probe.physical_id("Table"), Key={"id": {"S": "x"}}).get(
        "Item") is None  # refused before it reached the table


def test_a_deny_statement_wins_over_an_allow_when_both_match(probe):
    outcome = call(probe, "dynamodb", "get_item", TableName=probe.physical_id("Other"), Key={"id": {"S": "x"}})
    assert outcome["code"] == "AccessDeniedException"
    assert outcome["message"].endswith(
        f"dynamodb:GetItem on resource: {table_arn(probe, 'Other')} with an explicit deny in an identity-based policy")


@pytest.mark.parametrize(("service", "operation", "params", "denied"), [
    # (error class botocore raises, code, HTTP status), per each service's API reference
    ("s3", "put_object", lambda s: {"Bucket": s.physical_id("Bucket"), "Key": "k", "Body": "x"},
     ("AccessDenied", "AccessDenied", 403)),
    ("sns", "publish", lambda s: {"TopicArn": s.physical_id("Topic"), "Message": "m"},
     ("AuthorizationErrorException", "AuthorizationError", 403)),
    ("sqs", "send_message", lambda s: {"QueueUrl": s.physical_id("Queue"), "MessageBody": "m"},
     ("ClientError", "AccessDenied", 403)),
    ("secretsmanager", "get_secret_value", lambda s: {"SecretId": s.physical_id("Secret")},
     ("ClientError", "AccessDeniedException", 400)),
    ("sesv2", "get_account", lambda s: {}, ("ClientError", "AccessDeniedException", 403)),
    ("stepfunctions", "start_execution", lambda s: {"stateMachineArn": s.physical_id("PutMachine")},
     ("ClientError", "AccessDeniedException", 400)),
    ("lambda", "get_function", lambda s: {"FunctionName": s.physical_id("Caller")},
     ("ClientError", "AccessDeniedException", 403)),
])
def test_each_service_refuses_a_call_the_role_lacks_with_its_own_access_denied_error(
        probe, service, operation, params, denied):
    outcome = call(probe, service, operation, **params(probe))
    assert (outcome["class"], outcome["code"], outcome["status"]) == denied
    assert outcome["message"].startswith(f"User: {assumed(probe, 'Caller', probe.physical_id('Caller'))} is not "
                                         f"authorized to perform: ")


def test_a_role_written_in_the_template_grants_its_own_policies_and_not_the_functions(probe):
    table = probe.physical_id("Table")
    assert call(probe, "dynamodb", "put_item", "RoleCaller", TableName=table, Item={"id": {"S": "r"}}) == "ok"
    outcome = call(probe, "dynamodb", "get_item", "RoleCaller", TableName=table, Key={"id": {"S": "r"}})
    assert outcome["message"].startswith(
        f"User: arn:aws:sts::{ACCOUNT_ID}:assumed-role/written-role/{probe.physical_id('RoleCaller')} is not "
        f"authorized to perform: dynamodb:GetItem")


def test_the_operators_own_calls_are_not_checked_when_no_function_or_state_machine_makes_them(probe):
    probe.client("dynamodb").put_item(TableName=probe.physical_id("Table"), Item={"id": {"S": "operator"}})
    probe.client("sns").publish(TopicArn=probe.physical_id("Topic"), Message="m")


@pytest.mark.parametrize(("machine", "error"), [
    # optimized integration: the SDK for Java v1's generic exception for an error code its model lacks
    ("PutMachine", "DynamoDB.AmazonDynamoDBException"),
    ("SdkPutMachine", "DynamoDb.DynamoDbException"),  # aws-sdk: <Service>.<Service>Exception, likewise
])
def test_a_task_whose_role_lacks_the_action_fails_with_the_services_error(probe, machine, error):
    result = probe.run(machine, {})

    assert result.status == "FAILED"
    assert result.error == error
    assert (f"is not authorized to perform: dynamodb:PutItem on resource: {table_arn(probe, 'Table')} because no "
            f"identity-based policy allows the dynamodb:PutItem action") in result.cause
    assert f"assumed-role/{probe.stack_name}-{machine}Role/" in result.cause
    assert probe.client("dynamodb").get_item(TableName=probe.physical_id("Table"), Key={"id": {"S": "from-the-machine"}}
                                             ).get("Item") is None


def test_a_lambda_invoke_task_fails_when_the_state_machine_may_not_invoke_the_function(probe):
    result = probe.run("UninvitedMachine", {"service": "sts", "operation": "get_caller_identity"})

    assert result.status == "FAILED"
    assert result.error == "Lambda.AWSLambdaException"
    assert "Error Code: AccessDeniedException" in result.cause
    assert f"lambda:InvokeFunction on resource: {probe.resource('Caller').attributes['Arn']}" in result.cause


def test_a_distributed_map_fails_when_its_state_machine_may_not_start_its_child_executions(probe):
    result = probe.run("FanOutMachine", {"items": [1, 2, 3]})

    assert result.status == "FAILED"
    assert result.error == "States.Runtime"
    machine = probe.resource("FanOutMachine").attributes["Arn"]
    assert f"is not authorized to perform: states:StartExecution on resource: {machine} because" in result.cause


def test_the_function_a_state_machine_invokes_calls_as_its_own_role_not_the_state_machines(probe):
    result = probe.run("DelegatingMachine", {"service": "dynamodb", "operation": "put_item", "params": {
        "TableName": probe.physical_id("Table"), "Item": {"id": {"S": "y"}}}})

    assert result.status == "SUCCEEDED"  # the machine may invoke the function; the function may not write
    assert result.output["code"] == "AccessDeniedException"
    assert result.output["message"].startswith(
        f"User: {assumed(probe, 'Caller', probe.physical_id('Caller'))} is not authorized to perform: "
        f"dynamodb:PutItem")


# ------------------------------------------------------------------------------ the real template


def _without(monkeypatch, logical_id, edit):
    """Deploy template.yaml with one resource's Policies edited by `edit` (which must change them)."""
    original = stack_module.load_template

    def load(*args, **kwargs):
        template = original(*args, **kwargs)
        policies = template.resources[logical_id].properties["Policies"]
        edited = edit(json.loads(json.dumps(policies)))
        assert edited != policies, f"{logical_id}.Policies: the edit changed nothing"
        template.resources[logical_id].properties["Policies"] = edited
        return template

    monkeypatch.setattr(stack_module, "load_template", load)


def _drop_action(action):
    def edit(policies):
        for policy in policies:
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                actions = statement.get("Action")
                if isinstance(actions, list) and action in actions:
                    actions.remove(action)
        return policies
    return edit


def _drop_policy_template(name):
    return lambda policies: [p for p in policies if not (isinstance(p, dict) and name in p)]


def _small_campaign(stack):
    ses = stack.client("sesv2")
    add_contacts(stack, {f"user{i}@example.org": "ACTIVE" for i in range(5)}, ["news"])
    ses.create_email_template(TemplateName="hello", TemplateContent={"Subject": "Hi", "Text": "Hello"})
    return stack.run("CampaignStateMachine", {
        "id": "iam-campaign", "sender": f"news@{SENDER_DOMAIN}", "audience": {"lists": ["news"]},
        "variants": [{"name": "a", "weight": 100, "template": "hello"}]})


def _real_stack():
    return LocalStack(template_path=ROOT / "template.yaml", ses_identities=(SENDER_DOMAIN,))


@pytest.mark.slow
def test_every_call_of_a_campaign_is_checked_against_the_role_that_makes_it(stack):
    result = _small_campaign(stack)

    assert result.status == "SUCCEEDED"
    roles = stack.runtime.iam
    send_batch = roles.functions[stack.physical_id("SendBatchFunction")]
    machine = roles.state_machines[stack.resource("CampaignStateMachine").attributes["Name"]]
    assert {a for a, _ in send_batch._decisions} >= {"ses:SendBulkEmail", "dynamodb:UpdateItem"}
    assert {a for a, _ in machine._decisions} >= {"lambda:InvokeFunction", "s3:GetObject", "states:StartExecution"}
    assert set(send_batch._decisions.values()) == set(machine._decisions.values()) == {"allowed"}


def _control(stack):
    item = stack.client("dynamodb").get_item(TableName=stack.outputs["CampaignsTableName"],
                                             Key={"campaign_id": {"S": "iam-campaign"}})["Item"]
    return item["status"]["S"], json.loads(item["failure"]["S"])


@pytest.mark.slow
def test_campaign_fails_having_sent_nothing_when_send_batch_may_not_send_bulk_email(monkeypatch):
    _without(monkeypatch, "SendBatchFunction", _drop_action("ses:SendBulkEmail"))
    with _real_stack() as stack:
        from sesflow.engine.ses import simulator

        result = _small_campaign(stack)
        decisions = stack.runtime.iam.functions[stack.physical_id("SendBatchFunction")]._decisions

        # the denial is no retry's to fix: the campaign fails with it, nobody is sent anything
        assert (result.status, result.error) == ("FAILED", "CampaignFailed"), result.cause
        assert json.loads(result.cause)["sent"] == 0
        status, failure = _control(stack)
        assert status == "FAILED" and "ses:SendBulkEmail" in failure["message"]
        assert simulator().outbox == []
        assert {d for (a, _), d in decisions.items() if a == "ses:SendBulkEmail"} == {"implicit"}


@pytest.mark.slow
def test_campaign_fails_with_the_denial_when_the_state_machine_may_not_read_its_manifests(monkeypatch):
    _without(monkeypatch, "CampaignStateMachine", _drop_policy_template("S3ReadPolicy"))
    with _real_stack() as stack:
        result = _small_campaign(stack)

        assert (result.status, result.error) == ("FAILED", "CampaignFailed"), result.cause
        assert json.loads(result.cause)["sent"] == 0
        status, failure = _control(stack)
        assert status == "FAILED"
        assert failure["code"] == "States.Runtime"  # moto's name for a failed ItemReader
        assert "(AccessDenied) when calling the GetObject operation" in failure["message"]
        assert "CampaignStateMachineRole" in failure["message"] and "s3:GetObject" in failure["message"]
