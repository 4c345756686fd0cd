"""The template resolver: what Ref, GetAtt, Sub and friends give, as CloudFormation would."""

import textwrap

import pytest

from sesflow.engine.template import TemplateError, load_template

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: {Type: String, Default: dev, AllowedValues: [dev, prod]}
  Size: {Type: Number, Default: 5}
  Names: {Type: CommaDelimitedList, Default: "a,b,c"}
Mappings:
  ByStage: {dev: {Retention: 7}, prod: {Retention: 90}}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  NotProd: !Not [!Condition IsProd]
  Both: !And [!Condition NotProd, !Equals [!Ref Size, 5]]
Globals:
  Function:
    Runtime: python3.11
    Timeout: 10
    Environment: {Variables: {SHARED: one, TABLE: !Ref Orders}}
Resources:
  Orders:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "orders-${Stage}"
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
  Queue:
    Type: AWS::SQS::Queue
  ProdOnly:
    Type: AWS::SNS::Topic
    Condition: IsProd
  Greet:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: app.handler
      Timeout: 20
      Environment: {Variables: {OWN: two, SHARED: mine}}
      Description: !Join ["-", [!Select [1, !Ref Names], !Select [0, !Split ["/", "x/y"]]]]
      Tags:
        Retention: !FindInMap [ByStage, !Ref Stage, Retention]
        QueueArn: !GetAtt Queue.Arn
        Literal: !Sub "${!NotAVariable}-${AWS::Region}-${AWS::AccountId}"
        WithVars: !Sub ["${Q}/${Greet.Arn}", {Q: !GetAtt Queue.QueueName}]
        Maybe: !If [IsProd, big, !Ref AWS::NoValue]
        Both: !If [Both, first, second]
Outputs:
  TableName: {Value: !Ref Orders}
  Topic: {Condition: IsProd, Value: !Ref ProdOnly}
"""


@pytest.fixture
def template_file(tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(TEMPLATE))
    return path


def test_intrinsics_resolve_as_cloudformation_does(template_file):
    t = load_template(template_file, stack_name="demo")
    greet = t.resources["Greet"].properties
    tags = greet["Tags"]
    assert t.resources["Orders"].physical_id == "orders-dev"
    assert greet["Description"] == "b-x"
    assert tags["Retention"] == 7
    assert tags["QueueArn"].startswith("arn:aws:sqs:us-east-1:123456789012:demo-Queue-")
    assert tags["Literal"] == "${NotAVariable}-us-east-1-123456789012"
    queue, greet_fn = t.resources["Queue"], t.resources["Greet"]
    assert tags["WithVars"] == f"{queue.attributes['QueueName']}/{greet_fn.attributes['Arn']}"
    assert "Maybe" not in tags  # AWS::NoValue removes the key
    assert tags["Both"] == "first"
    assert t.outputs == {"TableName": "orders-dev"}


def test_condition_false_leaves_resource_and_output_out(template_file):
    assert "ProdOnly" not in load_template(template_file).resources
    prod = load_template(template_file, parameter_overrides={"Stage": "prod"})
    assert "ProdOnly" in prod.resources
    assert prod.outputs["Topic"] == prod.resources["ProdOnly"].physical_id
    assert prod.resources["Greet"].properties["Tags"]["Maybe"] == "big"


def test_globals_merge_with_function_properties(template_file):
    greet = load_template(template_file).resources["Greet"].properties
    assert greet["Runtime"] == "python3.11"
    assert greet["Timeout"] == 20  # the function wins
    assert greet["Environment"]["Variables"] == {"SHARED": "mine", "TABLE": "orders-dev", "OWN": "two"}


def test_physical_names_are_stable_across_loads(template_file):
    first = load_template(template_file, stack_name="s1").resources["Queue"].physical_id
    assert first == load_template(template_file, stack_name="s1").resources["Queue"].physical_id
    assert first != load_template(template_file, stack_name="s2").resources["Queue"].physical_id


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Nope": "x"}, "parameter override Nope: not a parameter"),
        ({"Stage": "qa"}, "Parameters.Stage: 'qa' is not one of"),
    ],
)
def test_bad_parameter_override_is_refused_when_unknown_or_not_allowed(template_file, overrides, message):
    with pytest.raises(TemplateError, match=message):
        load_template(template_file, parameter_overrides=overrides)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!Ref Missing", "Resources.Broken.Properties.Thing: Ref Missing names no parameter or resource"),
        ("!GetAtt Queue.Nope", "Fn::GetAtt Queue.Nope: AWS::SQS::Queue has no attribute Nope"),
        ("!GetAtt Ghost.Arn", "Fn::GetAtt Ghost.Arn: no resource Ghost"),
        ("!Select [5, [a, b]]", "Fn::Select index 5"),
        ("!ImportValue other-stack", "intrinsic Fn::ImportValue is not supported"),
    ],
)
def test_unresolvable_intrinsic_names_where_it_is(tmp_path, value, message):
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(f"""
        Resources:
          Queue: {{Type: AWS::SQS::Queue}}
          Broken:
            Type: AWS::SNS::Topic
            Properties:
              Thing: {value}
        """))
    with pytest.raises(TemplateError, match=message.replace("[", r"\[")):
        load_template(path)


def test_the_project_template_resolves_every_resource():
    t = load_template("template.yaml")
    machine = t.resources["CampaignStateMachine"].properties
    send_arn = t.resources["SendBatchFunction"].attributes["Arn"]
    assert machine["DefinitionSubstitutions"]["SendBatchFunctionArn"] == send_arn
    send = t.resources["SendBatchFunction"].properties
    assert send["Environment"]["Variables"]["SENDS_TABLE"] == t.resources["SendsTable"].physical_id
    assert send["Handler"] == "app.handlers.send_batch.lambda_handler"
