"""AWS::SecretsManager::Secret and SAM's FunctionUrlConfig (AWS::Lambda::Url) on the engine."""

import json
import string
import textwrap

import pytest

from sesflow.engine.stack import LocalStack, generated_secret_string
from sesflow.engine.template import TemplateError

ECHO = '''
import json


def echo(event, context):
    """Answers with what it was given, as a function URL's caller sees it."""
    return {"statusCode": 201, "headers": {"X-Seen": "yes"}, "body": json.dumps(event)}


def broken(event, context):
    raise RuntimeError("no")
'''


@pytest.fixture
def url_stack(tmp_path):
    (tmp_path / "engine_url_echo.py").write_text(ECHO)
    body = textwrap.dedent(f"""\
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Key:
            Type: AWS::SecretsManager::Secret
            Properties:
              GenerateSecretString: {{PasswordLength: 40, ExcludePunctuation: true, ExcludeUppercase: true}}
          Echo:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: {tmp_path}
              Handler: engine_url_echo.echo
              Runtime: python3.11
              FunctionUrlConfig: {{AuthType: NONE}}
              Environment: {{Variables: {{KEY_ARN: !Ref Key}}}}
          Broken:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: {tmp_path}
              Handler: engine_url_echo.broken
              Runtime: python3.11
              FunctionUrlConfig: {{AuthType: AWS_IAM}}
        Outputs:
          EchoUrl: {{Value: !GetAtt EchoUrl.FunctionUrl}}
          BrokenUrl: {{Value: !GetAtt BrokenUrl.FunctionUrl}}
          KeyArn: {{Value: !Ref Key}}
    """)
    (tmp_path / "template.yaml").write_text(body)
    with LocalStack(template_path=tmp_path / "template.yaml") as up:
        yield up


def test_a_generated_secret_is_created_with_its_constraints_and_found_by_its_ref(url_stack):
    arn = url_stack.outputs["KeyArn"]
    value = url_stack.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]

    assert arn.startswith("arn:aws:secretsmanager:us-east-1:123456789012:secret:")
    assert len(value) == 40 and set(value) <= set(string.ascii_lowercase + string.digits)
    env = url_stack.client("lambda").get_function(FunctionName=url_stack.physical_id("Echo"))
    assert env["Configuration"]["Environment"]["Variables"]["KEY_ARN"] == arn


def test_the_function_url_output_is_the_url_moto_serves_and_request_invokes_the_function(url_stack):
    url = url_stack.outputs["EchoUrl"]
    config = url_stack.client("lambda").get_function_url_config(FunctionName=url_stack.physical_id("Echo"))
    assert config["FunctionUrl"] == url and config["AuthType"] == "NONE"
    assert url.startswith("https://") and url.endswith(".lambda-url.us-east-1.on.aws/")

    response = url_stack.request(url + "path?a=1&a=2&b=x%2By", "POST", body="k=v", headers={"X-Custom": "1"})

    assert response["statusCode"] == 201 and response["headers"]["x-seen"] == "yes"
    event = json.loads(response["body"])
    assert event["version"] == "2.0" and event["requestContext"]["http"]["method"] == "POST"
    assert (event["rawPath"], event["rawQueryString"]) == ("/path", "a=1&a=2&b=x%2By")
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x+y"}
    assert event["headers"]["x-custom"] == "1" and event["body"] == "k=v" and event["isBase64Encoded"] is False


def test_a_failing_function_answers_502_and_an_unknown_url_is_refused(url_stack):
    assert url_stack.request(url_stack.outputs["BrokenUrl"])["statusCode"] == 502
    with pytest.raises(KeyError, match="not a function URL of this stack"):
        url_stack.request("https://nowhere.lambda-url.us-east-1.on.aws/")


def test_generated_strings_follow_the_spec_and_are_stable_per_stack_and_resource():
    spec = {"PasswordLength": 30, "ExcludeCharacters": "abc0", "RequireEachIncludedType": True}
    one = generated_secret_string(spec, "stack/Key")

    assert len(one) == 30 and not set(one) & set("abc0")
    assert {any(c in chars for c in one) for chars in (string.ascii_lowercase, string.ascii_uppercase,
                                                       string.digits, string.punctuation)} == {True}
    assert generated_secret_string(spec, "stack/Key") == one
    assert generated_secret_string(spec, "other/Key") != one
    templated = json.loads(generated_secret_string(
        {"SecretStringTemplate": '{"user": "ses"}', "GenerateStringKey": "password"}, "stack/Key"))
    assert templated["user"] == "ses" and len(templated["password"]) == 32
    with pytest.raises(TemplateError, match="can satisfy"):
        generated_secret_string({"PasswordLength": 2}, "stack/Key")
