"""A Distributed Map over a CSV or JSON Lines file in S3 on the engine, as Step Functions runs it: the ItemReader
parses the file as AWS documents (delimiters, quotes, headers, one JSON value a line), an ItemBatcher gives each
child {"BatchInput", "Items"} in file order within its limits, and a file that cannot be read fails the execution
with States.ItemReaderFailed, the cause naming the file and the problem."""

from __future__ import annotations

import io
import json

import botocore.exceptions
import pytest

from sesflow.engine import item_files
from sesflow.engine.stack import LocalStack
from tests.engine.conftest import BUCKET
from tests.engine.test_sfn_patches import create, output, run
from tests.engine.test_stack import PROBE, write_template

ROWS = [("email", "name", "note"),
        ("a@example.org", "Smith{d} Anna", 'said "hi"'),
        ("b@example.org", "Bo", "two\nlines"),
        ("c@example.org", "Cy", ""),
        ("d@example.org", "Di", "plain"),
        ("e@example.org", "Ed", "x{d}y")]


def csv_file(delimiter: str, newline: str = "\n") -> tuple[bytes, list[dict[str, str]]]:
    """ROWS as a file with `delimiter`, fields quoted where they hold the delimiter, a quote or a newline; and the
    items AWS reads from it."""
    rows = [[value.format(d=delimiter) for value in row] for row in ROWS]

    def field(value: str) -> str:
        return f'"{value.replace(chr(34), chr(34) * 2)}"' if any(c in value for c in (delimiter, '"', "\n")) else value

    text = newline.join(delimiter.join(field(v) for v in row) for row in rows) + newline
    return text.encode(), [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def file_map(reader_config: dict, *, jsonata: bool = False, child: dict | None = None, **fields) -> dict:
    """A state machine whose Distributed Map reads s3://BUCKET/<input.key> with `reader_config`; its children run
    `child` (a Pass by default, so each outputs its input)."""
    if jsonata:
        reader = {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": reader_config,
                  "Arguments": {"Bucket": BUCKET, "Key": "{% $states.input.key %}"}}
    else:
        reader = {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": reader_config,
                  "Parameters": {"Bucket": BUCKET, "Key.$": "$.key"}}
    state = {"Type": "Map", "End": True, "ItemReader": reader, **fields, "ItemProcessor": {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        **(child or {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}})}}
    definition = {"StartAt": "Import", "States": {"Import": state}}
    if jsonata:
        definition["QueryLanguage"] = "JSONata"
    return definition


def map_run_counts(client, described: dict) -> dict:
    (map_run,) = client.list_map_runs(executionArn=described["executionArn"])["mapRuns"]
    return client.describe_map_run(mapRunArn=map_run["mapRunArn"])["itemCounts"]


def json_size(value) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


# ----------------------------------------------------------------------------------------------------- CSV


@pytest.mark.parametrize(("delimiter", "name", "newline"), [
    (",", "COMMA", "\n"), (";", "SEMICOLON", "\n"), ("\t", "TAB", "\r\n")])
def test_children_get_the_csv_rows_in_file_order_two_to_a_batch(client, bucket, delimiter, name, newline):
    body, rows = csv_file(delimiter, newline)
    bucket.put_object(Bucket=BUCKET, Key="contacts.csv", Body=body)
    definition = file_map({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW", "CSVDelimiter": name},
                          ItemBatcher={"MaxItemsPerBatch": 2})

    batches = output(run(client, definition, {"key": "contacts.csv"}))

    assert batches == [{"Items": rows[0:2]}, {"Items": rows[2:4]}, {"Items": rows[4:]}]
    assert rows[0]["name"] == f"Smith{delimiter} Anna" and rows[0]["note"] == 'said "hi"'
    assert rows[1]["note"] == "two\nlines"


def test_the_csv_example_of_the_step_functions_guide_parses_as_the_guide_shows(client, bucket):
    """"How Step Functions parses input CSV files": quotes may hold commas and newlines, a doubled quote is a quote,
    inside quotes or not, and every field is a string."""
    bucket.put_object(Bucket=BUCKET, Key="example.csv", Body=(
        b'abc,123,"This string contains commas, a double quotation marks (""), and a newline (\n)",'
        b'{""MyKey"":""MyValue""},"[1,2,3]"\n'))
    headers = ["MyLetters", "MyNumbers", "MyString", "MyObject", "MyArray"]
    definition = file_map({"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": headers})

    (item,) = output(run(client, definition, {"key": "example.csv"}))

    assert item == {"MyLetters": "abc", "MyNumbers": "123",
                    "MyString": 'This string contains commas, a double quotation marks ("), and a newline (\n)',
                    "MyObject": '{"MyKey":"MyValue"}', "MyArray": "[1,2,3]"}
    assert json.loads(item["MyObject"]) == {"MyKey": "MyValue"}


def test_a_short_row_gets_empty_strings_and_a_long_rows_extra_fields_are_skipped(client, bucket):
    bucket.put_object(Bucket=BUCKET, Key="ragged.csv",
                      Body=b"H1,\nValue4,Value5,Value6\n,,,\ntrue,1,'HelloWorld'\nNull,None,\n   \nonly\n")
    definition = file_map({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"})

    items = output(run(client, definition, {"key": "ragged.csv"}))

    # the header "H1," names two columns, "H1" and ""
    assert items == [{"H1": "Value4", "": "Value5"}, {"H1": "", "": ""}, {"H1": "true", "": "1"},
                     {"H1": "Null", "": "None"}, {"H1": "   ", "": ""}, {"H1": "only", "": ""}]


def test_backslashes_escape_a_backslash_a_quote_or_the_delimiter_and_vanish_before_anything_else(client, bucket):
    bucket.put_object(Bucket=BUCKET, Key="paths.csv",
                      Body=b'path|size\nC:\\\\Program Files\\\\MyApp.exe|6534512\na\\|b|\\"q\\"\n\\n\\x|1\n')
    definition = file_map({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW", "CSVDelimiter": "PIPE"})

    items = output(run(client, definition, {"key": "paths.csv"}))

    assert items == [{"path": "C:\\Program Files\\MyApp.exe", "size": "6534512"},
                     {"path": "a|b", "size": '"q"'}, {"path": "nx", "size": "1"}]


def test_a_csv_whose_headers_repeat_fails_with_item_reader_failed_before_any_child_runs(client, bucket):
    bucket.put_object(Bucket=BUCKET, Key="dup.csv", Body=b"email,name,email\na@example.org,A,b@example.org\n")
    definition = file_map({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"})

    described = run(client, definition, {"key": "dup.csv"})

    assert (described["status"], described["error"]) == ("FAILED", "States.ItemReaderFailed")
    assert "s3://sesflow-test/dup.csv" in described["cause"]
    assert "CSV headers cannot contain duplicates" in described["cause"] and "'email'" in described["cause"]
    assert map_run_counts(client, described)["total"] == 0


def test_a_csv_header_over_10_kib_fails_with_item_reader_failed(client, bucket):
    header = ",".join(f"column_{i:05}" for i in range(1000))  # 12,999 bytes
    bucket.put_object(Bucket=BUCKET, Key="wide.csv", Body=f"{header}\n{',' * 999}\n".encode())
    definition = file_map({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"})

    described = run(client, definition, {"key": "wide.csv"})

    assert (described["status"], described["error"]) == ("FAILED", "States.ItemReaderFailed")
    assert "12,999 bytes" in described["cause"] and "10 KiB" in described["cause"]


# ----------------------------------------------------------------------------------------------------- JSONL


def test_jsonl_batches_stay_within_max_input_bytes_per_batch_with_their_batch_input(client, bucket):
    lines = [{"email": f"user{i}@example.org", "attributes": {"n": i}} for i in range(12)]
    bucket.put_object(Bucket=BUCKET, Key="contacts.jsonl", Body="".join(json.dumps(v) + "\n" for v in lines).encode())
    limit = 200
    definition = file_map({"InputType": "JSONL"}, jsonata=True, ItemBatcher={
        "MaxInputBytesPerBatch": limit, "BatchInput": {"list": "{% $states.input.list %}"}})

    batches = output(run(client, definition, {"key": "contacts.jsonl", "list": "news"}))

    assert [item for batch in batches for item in batch["Items"]] == lines  # every line once, in file order
    assert all(batch["BatchInput"] == {"list": "news"} for batch in batches)
    assert all(json_size(batch) <= limit for batch in batches)
    for batch, following in zip(batches, batches[1:], strict=False):  # each batch as full as the limit lets it be
        fuller = {**batch, "Items": batch["Items"] + following["Items"][:1]}
        assert json_size(fuller) > limit
    assert len(batches) > 2


def test_max_items_stops_the_reading_before_a_malformed_line_past_it(client, bucket):
    bucket.put_object(Bucket=BUCKET, Key="head.jsonl", Body=b'{"n": 1}\n{"n": 2}\n[3]\n{this is not json\n')
    definition = file_map({"InputType": "JSONL", "MaxItems": 3})

    assert output(run(client, definition, {"key": "head.jsonl"})) == [{"n": 1}, {"n": 2}, [3]]


def test_a_malformed_jsonl_line_fails_the_execution_with_item_reader_failed_naming_the_line(client, bucket):
    bucket.put_object(Bucket=BUCKET, Key="bad.jsonl", Body=b'{"n": 1}\n{"n": 2}\n{"n": 3,}\n{"n": 4}\n')
    definition = file_map({"InputType": "JSONL"}, jsonata=True, ItemBatcher={"MaxItemsPerBatch": 2})

    described = run(client, definition, {"key": "bad.jsonl"})

    assert (described["status"], described["error"]) == ("FAILED", "States.ItemReaderFailed")
    assert described["cause"].startswith("s3://sesflow-test/bad.jsonl: line 3 is not JSON")
    events = [e["type"] for e in client.get_execution_history(executionArn=described["executionArn"])["events"]]
    assert events[-3:] == ["MapRunFailed", "MapStateFailed", "ExecutionFailed"]


def test_a_blank_jsonl_line_fails_the_execution_with_item_reader_failed(client, bucket):
    bucket.put_object(Bucket=BUCKET, Key="gap.jsonl", Body=b'{"n": 1}\n\n{"n": 2}\n')
    definition = file_map({"InputType": "JSONL"})

    described = run(client, definition, {"key": "gap.jsonl"})

    assert (described["status"], described["error"]) == ("FAILED", "States.ItemReaderFailed")
    assert "line 2 is blank" in described["cause"]


def test_a_missing_file_fails_the_execution_with_item_reader_failed_naming_it(client, bucket):
    definition = file_map({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"}, jsonata=True)

    described = run(client, definition, {"key": "uploads/never-uploaded.csv"})

    assert (described["status"], described["error"]) == ("FAILED", "States.ItemReaderFailed")
    assert "s3://sesflow-test/uploads/never-uploaded.csv" in described["cause"]
    assert "NoSuchKey" in described["cause"]


# ----------------------------------------------------------------------------------------------------- batching


def test_the_item_selector_shapes_each_row_before_the_rows_are_batched(client, bucket):
    body, rows = csv_file(",")
    bucket.put_object(Bucket=BUCKET, Key="contacts.csv", Body=body)
    selector = {"row.$": "$$.Map.Item.Value", "line.$": "$$.Map.Item.Index", "list.$": "$.list"}
    definition = file_map({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"}, ItemSelector=selector,
                          ItemBatcher={"MaxItemsPerBatch": 3, "BatchInput": {"source.$": "$.key"}})

    batches = output(run(client, definition, {"key": "contacts.csv", "list": "news"}))

    selected = [{"row": row, "line": index, "list": "news"} for index, row in enumerate(rows)]
    assert batches == [{"BatchInput": {"source": "contacts.csv"}, "Items": selected[:3]},
                       {"BatchInput": {"source": "contacts.csv"}, "Items": selected[3:]}]


def test_a_result_writer_gets_one_result_per_batch_in_order(client, bucket):
    body, rows = csv_file(";")
    bucket.put_object(Bucket=BUCKET, Key="contacts.csv", Body=body)
    definition = file_map({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW", "CSVDelimiter": "SEMICOLON"},
                          jsonata=True, ItemBatcher={"MaxItemsPerBatch": "{% $states.input.size %}"},
                          ResultWriter={"Resource": "arn:aws:states:::s3:putObject",
                                        "Arguments": {"Bucket": BUCKET, "Prefix": "imports"}})

    details = output(run(client, definition, {"key": "contacts.csv", "size": 2}))

    manifest = json.loads(bucket.get_object(Bucket=BUCKET, Key=details["ResultWriterDetails"]["Key"])["Body"].read())
    (succeeded,) = manifest["ResultFiles"]["SUCCEEDED"]
    results = json.loads(bucket.get_object(Bucket=BUCKET, Key=succeeded["Key"])["Body"].read())
    assert [json.loads(r["Output"])["Items"] for r in results] == [rows[0:2], rows[2:4], rows[4:]]


def test_an_item_batcher_limit_that_is_not_a_positive_integer_fails_the_map_run(client, bucket):
    body, _ = csv_file(",")
    bucket.put_object(Bucket=BUCKET, Key="contacts.csv", Body=body)
    definition = file_map({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
                          ItemBatcher={"MaxItemsPerBatchPath": "$.size"})

    described = run(client, definition, {"key": "contacts.csv", "size": 0})

    assert (described["status"], described["error"]) == ("FAILED", "States.Runtime")
    assert "ItemBatcher.MaxItemsPerBatch is 0" in described["cause"]


@pytest.mark.parametrize(("reader_config", "fields", "refusal"), [
    ({"InputType": "JSONL", "CSVDelimiter": "TAB"}, {}, "are for InputType CSV"),
    ({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW", "CSVDelimiter": "COLON"}, {}, "CSVDelimiter 'COLON'"),
    ({"InputType": "CSV"}, {}, "CSVHeaderLocation FIRST_ROW or GIVEN"),
    ({"InputType": "CSV", "CSVHeaderLocation": "GIVEN"}, {}, "takes CSVHeaders"),
    ({"InputType": "JSONL"}, {"ItemBatcher": {"BatchInput": {"a": 1}}}, "has MaxItemsPerBatch"),
    ({"InputType": "JSONL"}, {"ItemBatcher": {"MaxItemsPerBatch": 0}}, "positive integer"),
    ({"InputType": "JSONL"}, {"ItemBatcher": {"MaxInputBytesPerBatch": 300_000}}, "at most 262,144 bytes"),
    ({"InputType": "JSONL"}, {"ItemBatcher": {"MaxItemsPerBatch": 2, "MaxItemsPerBatchPath": "$.n"}}, "not both"),
])
def test_a_definition_whose_reader_or_batcher_aws_would_refuse_is_refused_at_create(client, reader_config, fields,
                                                                                      refusal):
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        create(client, file_map(reader_config, **fields))

    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400  # moto's InvalidDefinition, uncoded
    assert "Map state 'Import'" in str(refused.value) and refusal in str(refused.value)


# ----------------------------------------------------------------------------------------------------- streaming


class CountingBody(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.read_bytes = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.read_bytes += len(chunk)
        return chunk


def test_taking_the_first_rows_of_a_large_file_reads_only_its_first_chunk():
    rows = "".join(f"user{i}@example.org,User {i},\"note, {i}\"\n" for i in range(200_000))
    body = CountingBody(("email,name,note\n" + rows).encode())  # 7 MB
    items = item_files.read_items(body, item_files.ReaderSpec("CSV"), max_items=100_000_000)

    first = [next(items) for _ in range(1000)]

    assert first[-1] == {"email": "user999@example.org", "name": "User 999", "note": "note, 999"}
    assert body.read_bytes <= item_files.CHUNK_BYTES


# ----------------------------------------------------------------------------------------------------- on a stack


@pytest.fixture(scope="module")
def import_stack(tmp_path_factory):
    """Two state machines with the same Distributed Map (a CSV, two rows a batch, a Lambda that echoes its batch,
    a ResultWriter): one whose role may read the bucket, one whose role may not."""
    tmp_path = tmp_path_factory.mktemp("import")
    definition = json.dumps({"QueryLanguage": "JSONata", "StartAt": "Import", "States": {"Import": {
        "Type": "Map", "End": True,
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                       "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
                       "Arguments": {"Bucket": "${Bucket}", "Key": "{% $states.input.key %}"}},
        "ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"key": "{% $states.input.key %}"}},
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"}, "StartAt": "Echo",
            "States": {"Echo": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True,
                                "Arguments": {"FunctionName": "${Echo}", "Payload": "{% $states.input %}"},
                                "Output": "{% $states.result.Payload %}"}}},
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                         "Arguments": {"Bucket": "${Bucket}", "Prefix": "results"}}}}})

    def machine(logical_id: str, suffix: str, reads: bool) -> str:
        read = "\n              - S3ReadPolicy: {BucketName: !Ref Bucket}" if reads else ""
        arn = ("arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:"
               f"${{AWS::StackName}}-{suffix}")
        return f"""
        {logical_id}:
          Type: AWS::Serverless::StateMachine
          Properties:
            Name: !Sub ${{AWS::StackName}}-{suffix}
            Definition: {definition}
            DefinitionSubstitutions: {{Bucket: !Ref Bucket, Echo: !GetAtt Echo.Arn}}
            Policies:{read}
              - S3WritePolicy: {{BucketName: !Ref Bucket}}
              - LambdaInvokePolicy: {{FunctionName: !Ref Echo}}
              - Statement:
                  - Effect: Allow
                    Action: [states:StartExecution]
                    Resource: !Sub {arn}
        """
    path = write_template(tmp_path, f"""
        Bucket: {{Type: AWS::S3::Bucket}}
        Echo:
          Type: AWS::Serverless::Function
          Properties:
            CodeUri: {PROBE}
            Handler: engine_probe_handlers.echo
            Runtime: python3.11
        {machine("ImportMachine", "import", reads=True)}
        {machine("BlindMachine", "blind", reads=False)}
    """)
    with LocalStack(template_path=path) as up:
        body, rows = csv_file(",")
        up.client("s3").put_object(Bucket=up.physical_id("Bucket"), Key="uploads/contacts.csv", Body=body)
        yield up, rows


def test_lambda_children_get_the_batches_and_the_result_writer_keeps_their_answers(import_stack):
    stack, rows = import_stack

    result = stack.run("ImportMachine", {"key": "uploads/contacts.csv"})

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    s3, bucket = stack.client("s3"), stack.physical_id("Bucket")

    def read(key):
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    (succeeded,) = read(result.output["ResultWriterDetails"]["Key"])["ResultFiles"]["SUCCEEDED"]
    answers = [json.loads(r["Output"]) for r in read(succeeded["Key"])]
    assert answers == [{"BatchInput": {"key": "uploads/contacts.csv"}, "Items": rows[i:i + 2]} for i in (0, 2, 4)]


def test_a_state_machine_that_may_not_get_the_file_fails_with_item_reader_failed_naming_the_denial(import_stack):
    stack, _ = import_stack

    result = stack.run("BlindMachine", {"key": "uploads/contacts.csv"})

    assert (result.status, result.error) == ("FAILED", "States.ItemReaderFailed")
    assert "(AccessDenied) when calling the GetObject operation" in result.cause
    assert f"{stack.stack_name}-BlindMachineRole" in result.cause and "s3:GetObject" in result.cause
