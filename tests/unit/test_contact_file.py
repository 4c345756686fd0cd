"""Contacts files: what `sesflow contacts import` reads, what it refuses (naming file and line), and in how much
memory."""

import io
import json
import tracemalloc
from decimal import Decimal

import pytest
from app.domain.contact_file import (
    CSV,
    JSON_LINES,
    MAX_ATTRIBUTE_BYTES,
    MAX_COLUMNS,
    MAX_LINE_BYTES,
    ContactRow,
    Record,
    RowProblem,
    Summary,
    check_file,
    merge,
    open_contacts,
    parse_row,
    read_rows,
    rejects_path,
    write_rejects,
)
from app.errors import ContactFileError, SesflowError


def write(tmp_path, text: str | bytes, name: str = "contacts.csv"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def rows(path) -> list[ContactRow | RowProblem]:
    return list(read_rows(path))


def refused(path) -> str:
    """The ContactFileError message reading the whole file raises."""
    with pytest.raises(ContactFileError) as raised:
        check_file(path)
    return str(raised.value)


# ---------------------------------------------------------------- formats


def test_a_csv_row_becomes_a_normalized_address_and_attributes_named_from_the_header(tmp_path):
    path = write(tmp_path, "Email,First Name,plan-tier\nJane.Doe@Example.COM,Jane,pro\n")
    assert rows(path) == [ContactRow("jane.doe@example.com", {"first_name": "Jane", "plan_tier": "pro"}, (2,))]


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    path = write(tmp_path, "\ufeffemail,name\nada@example.com,Ada Lovelace\n".encode())
    (row,) = rows(path)
    assert row.address == "ada@example.com" and row.attributes == {"name": "Ada Lovelace"}


@pytest.mark.parametrize(("delimiter", "name"), [(";", "semicolon"), ("\t", "tab"), (",", "comma")])
def test_the_delimiter_is_the_one_that_splits_the_header_most(tmp_path, delimiter, name):
    # The values hold the other two delimiters: only the header decides.
    text = delimiter.join(["email", "city", "note"]) + "\n" + delimiter.join(
        ["ada@example.com", '"Paris, France"', '"a;b\tc"']) + "\n"
    path = write(tmp_path, text)
    with open_contacts(path) as contacts:
        assert contacts.format == CSV and contacts.delimiter == delimiter
    (row,) = rows(path)
    assert row.attributes == {"city": "Paris, France", "note": "a;b\tc"}


def test_a_header_of_one_column_is_read_as_comma_separated(tmp_path):
    path = write(tmp_path, "email\nada@example.com\n")
    with open_contacts(path) as contacts:
        assert contacts.delimiter == ","
    assert [r.address for r in rows(path)] == ["ada@example.com"]


def test_a_quoted_field_spans_lines_and_a_row_keeps_the_line_it_starts_on(tmp_path):
    path = write(tmp_path, 'email,note\nada@example.com,"two\nlines"\n\nbob@example.com,"three\n\nlines"\n'
                           "not-an-address,x\n")
    found = rows(path)
    assert [(r.line, type(r).__name__) for r in found] == [(2, "ContactRow"), (5, "ContactRow"), (8, "RowProblem")]
    assert found[0].attributes == {"note": "two\nlines"}


def test_mailchimps_export_header_is_read(tmp_path):
    header = ("Email Address,First Name,Last Name,Phone Number,Birthday,MEMBER_RATING,OPTIN_TIME,OPTIN_IP,"
              "CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION,LAST_CHANGED,LEID,EUID,"
              "NOTES,TAGS")
    line = ("ada@example.com,Ada,Lovelace,,12/10,2,2024-01-02 10:00:00,,2024-01-02 10:01:00,,,,,,,GB,,"
            '2024-02-01 09:00:00,123456,abc123,,"""vip"",""beta"""')
    (row,) = rows(write(tmp_path, f"{header}\n{line}\n"))
    assert row.address == "ada@example.com"
    assert row.attributes["first_name"] == "Ada" and row.attributes["member_rating"] == "2"
    assert row.attributes["tags"] == '"vip","beta"' and "phone_number" not in row.attributes  # empty: no value


@pytest.mark.parametrize("header", ["e-mail", "E-Mail", "email address", "Email Address", "email_address",
                                    "ADDRESS", " Email "])
def test_the_address_column_may_be_named_as_exports_name_it(tmp_path, header):
    (row,) = rows(write(tmp_path, f"{header},x\nada@example.com,1\n"))
    assert row == ContactRow("ada@example.com", {"x": "1"}, (2,))


def test_json_lines_are_read_by_extension_or_by_their_first_character(tmp_path):
    text = ('{"email": "Ada@Example.com", "plan": "pro", "seats": 3, "ratio": 0.25, "vip": true, "gone": null}\n'
            "\n"
            '{"Email Address": "bob@example.com", "First Name": "Bob"}\n')
    for name in ("contacts.jsonl", "contacts.ndjson", "contacts.txt"):
        path = write(tmp_path, text, name)
        with open_contacts(path) as contacts:
            assert contacts.format == JSON_LINES and contacts.reject_columns is None
        assert rows(path) == [
            ContactRow("ada@example.com", {"plan": "pro", "seats": 3, "ratio": Decimal("0.25"), "vip": True}, (1,)),
            ContactRow("bob@example.com", {"first_name": "Bob"}, (3,)),
        ]


def test_an_idn_domain_is_stored_in_punycode_and_a_display_name_is_dropped(tmp_path):
    path = write(tmp_path, 'email\n"Doe, Jane" <Jane@Bücher.de>\nJane <j@x.com>\nuser@straße.de\n')
    assert [r.address for r in rows(path)] == ["jane@xn--bcher-kva.de", "j@x.com", "user@xn--strae-oqa.de"]


def test_an_empty_cell_or_null_is_no_value_and_values_are_trimmed(tmp_path):
    (row,) = rows(write(tmp_path, "email,a,b,c\nada@example.com,, x ,   \n"))
    assert row.attributes == {"b": "x"}
    (row,) = rows(write(tmp_path, '{"email": "ada@example.com", "a": null, "b": ""}\n', "c.jsonl"))
    assert row.attributes == {}


def test_a_short_row_lacks_only_its_missing_cells_and_a_blank_row_is_skipped(tmp_path):
    found = rows(write(tmp_path, "email,a,b\nada@example.com\n,,\n\nbob@example.com,1,2\n"))
    assert found == [ContactRow("ada@example.com", {}, (2,)), ContactRow("bob@example.com", {"a": "1", "b": "2"},
                                                                          (5,))]


def test_a_header_with_no_rows_is_an_empty_import(tmp_path):
    assert check_file(write(tmp_path, "email,name\n")) == Summary(0, 0)


# ---------------------------------------------------------------- file-level problems


def test_a_missing_or_unreadable_file_is_named(tmp_path):
    path = tmp_path / "nope.csv"
    assert refused(path) == f"{path}: cannot read it (No such file or directory)"
    assert refused(tmp_path) == f"{tmp_path}: cannot read it (Is a directory)"


@pytest.mark.parametrize(("text", "line"), [("", 1), ("\n\n  \n", 3)])
def test_an_empty_file_is_refused(tmp_path, text, line):
    path = write(tmp_path, text)
    assert refused(path).startswith(f"{path}: line {line}: the file is empty")


def test_a_nul_byte_is_a_binary_file(tmp_path):
    path = write(tmp_path, b"email\nada@example.com\nbo\x00b@example.com\n")
    assert refused(path) == f"{path}: line 3: a NUL byte (byte 3 of the line): a binary file, not CSV or JSON Lines"


def test_text_that_is_not_utf8_names_the_line_and_byte(tmp_path):
    path = write(tmp_path, "email,name\nada@example.com,Ren\xe9e\n".encode("latin-1"))
    assert refused(path) == (f"{path}: line 2: not UTF-8 text: byte 20 of the line is 0xE9 "
                             "(save the file as UTF-8)")


def test_utf16_is_named_as_such(tmp_path):
    path = write(tmp_path, "email\nada@example.com\n".encode("utf-16"))
    assert refused(path).startswith(f"{path}: line 1: UTF-16 text (byte-order mark FF FE), not UTF-8")


def test_a_file_without_a_header_is_told_so(tmp_path):
    path = write(tmp_path, "ada@example.com,Ada\nbob@example.com,Bob\n")
    assert refused(path).startswith(f"{path}: line 1: no header: this line is a row (it holds an address)")


def test_a_header_without_an_address_column_lists_the_columns_found(tmp_path):
    path = write(tmp_path, "\nname,phone\nAda,123\n")
    assert refused(path).startswith(f"{path}: line 2: no address column: found 'name', 'phone'; one must be "
                                    "email or address")


@pytest.mark.parametrize(("header", "column", "name"), [
    ("email,Version", "column 2 ('Version')", "version"),
    ("email,Episode Token", "column 2 ('Episode Token')", "episode_token"),
    ("email,created_at", "column 2 ('created_at')", "created_at"),
    ("email,created-by", "column 2 ('created-by')", "created_by"),
    ("email,Unsubscribed All At", "column 2 ('Unsubscribed All At')", "unsubscribed_all_at"),
    ("email,list_id", "column 2 ('list_id')", "list_id"),
    ("name,STRIKE_TIMES,email", "column 2 ('STRIKE_TIMES')", "strike_times"),
])
def test_a_column_naming_one_of_sesflows_own_fields_refuses_the_file(tmp_path, header, column, name):
    path = write(tmp_path, f"{header}\nada@example.com,x\n")
    assert refused(path).startswith(f"{path}: line 1: {column} is sesflow's own field {name!r}")


def test_two_columns_becoming_one_attribute_are_both_named(tmp_path):
    path = write(tmp_path, "email,First Name,plan,first_name\nada@example.com,A,p,B\n")
    assert refused(path) == (f"{path}: line 1: column 2 ('First Name') and column 4 ('first_name') both become "
                             "attribute 'first_name': keep one")


def test_mailchimps_postal_address_beside_its_email_address_is_the_attribute_postal_address(tmp_path):
    path = write(tmp_path, "Email Address,First Name,Address,Phone Number,MEMBER_RATING\n"
                           "ada@example.com,Ada,1 Main St,555,2\n")
    (row,) = read_rows(path)
    assert row.address == "ada@example.com"
    assert row.attributes == {"first_name": "Ada", "postal_address": "1 Main St", "phone_number": "555",
                              "member_rating": "2"}


def test_two_email_columns_are_both_named(tmp_path):
    path = write(tmp_path, "Email,First Name,E-mail\nada@example.com,Ada,a@b.org\n")
    assert refused(path).startswith(f"{path}: line 1: column 1 ('Email') and column 3 ('E-mail') would "
                                    "both be the address: keep one")


@pytest.mark.parametrize(("header", "message"), [
    ("email,Name (full)", "column 2 ('Name (full)') does not make an attribute name ('name_(full)')"),
    ("email,,name", "column 2 ('') has no name"),
    ("email,9lives", "column 2 ('9lives') does not make an attribute name ('9lives')"),
])
def test_a_column_that_makes_no_attribute_name_is_refused(tmp_path, header, message):
    path = write(tmp_path, f"{header}\nada@example.com,1,2\n")
    assert refused(path).startswith(f"{path}: line 1: {message}")


def test_a_header_of_more_than_1000_columns_is_refused(tmp_path):
    path = write(tmp_path, "email," + ",".join(f"c{i}" for i in range(MAX_COLUMNS)) + "\nada@example.com\n")
    assert refused(path) == f"{path}: line 1: 1,001 columns, at most 1,000"


def test_a_row_of_more_than_1000_columns_is_refused(tmp_path):
    path = write(tmp_path, "email,a\nada@example.com,1\nbob@example.com" + ",x" * MAX_COLUMNS + "\n")
    assert refused(path) == f"{path}: line 3: 1,001 columns, at most 1,000"


def test_a_row_of_a_million_columns_is_refused_without_reading_it_into_memory(tmp_path):
    path = tmp_path / "wide.csv"
    with path.open("w") as out:
        out.write("email,a\nada@example.com,1\nbob@example.com")
        for _ in range(1000):
            out.write(",x" * 1000)
        out.write(",x\n")  # 1,000,001 columns, 2 MB on one line
    tracemalloc.start()
    try:
        message = refused(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message.startswith(f"{path}: line 3: more than 1,000 columns (at most 1,000)")
    assert peak < 3 * MAX_LINE_BYTES  # the 1 MiB it read of the line, and its text: not the 2 MB, nor a million cells


def test_a_line_longer_than_1_mib_is_refused_saying_the_limit(tmp_path):
    path = write(tmp_path, "email,note\nada@example.com," + "n" * MAX_LINE_BYTES + "\n")
    assert refused(path) == f"{path}: line 2: longer than 1,048,576 bytes (1 MiB, the most one line may hold)"


def test_a_quote_never_closed_is_refused_where_its_row_starts(tmp_path):
    path = tmp_path / "open.csv"
    with path.open("w") as out:
        out.write('email,note\nada@example.com,ok\nbob@example.com,"never closed\n')
        for _ in range(30_000):
            out.write("ann@example.com,a line of text that the open quote swallows\n")
    assert refused(path).startswith(f"{path}: line 3: a row longer than 1,048,576 bytes (1 MiB, the most one row "
                                    "may hold) starts here: is a quote opened and never closed?")


def test_a_json_lines_row_is_held_to_the_column_rules(tmp_path):
    path = write(tmp_path, '{"email": "ada@example.com"}\n{"email": "bob@example.com", "episode": "x"}\n',
                 "c.jsonl")
    assert refused(path).startswith(f"{path}: line 2: field 'episode' is sesflow's own field 'episode'")
    path = write(tmp_path, '{"email": "ada@example.com", "First Name": "A", "first_name": "B"}\n', "d.jsonl")
    assert refused(path) == (f"{path}: line 1: field 'First Name' and field 'first_name' both become attribute "
                             "'first_name': keep one")
    path = write(tmp_path, json.dumps({"email": "a@example.com", **{f"k{i}": 1 for i in range(1000)}}) + "\n",
                 "e.jsonl")
    assert refused(path) == f"{path}: line 1: 1,001 columns, at most 1,000"


def test_a_contact_file_error_is_a_sesflow_error():
    assert issubclass(ContactFileError, SesflowError)


# ---------------------------------------------------------------- row problems


def test_an_invalid_address_is_a_row_problem_saying_why_without_quoting_it(tmp_path):
    path = write(tmp_path, "email,name\nada@example.com,Ada\nÉlodie@example.fr,Élodie\nbob@@x,Bob\n"
                           "cy@example.com,Cy\n,Nobody\n")
    found = rows(path)
    assert [r.address for r in found if isinstance(r, ContactRow)] == ["ada@example.com", "cy@example.com"]
    problems = [r for r in found if isinstance(r, RowProblem)]
    assert [(p.line, p.reason) for p in problems] == [
        (3, "email: not an email address SES sends to: the part before the @ is not 7-bit ASCII (SES does not "
            "support SMTPUTF8, RFC 6531)"),
        (4, "email: not an email address SES sends to: the part before the @ contains '@', which SES refuses "
            "unquoted"),
        (6, "email: empty"),
    ]
    assert problems[0].fields == {"email": "Élodie@example.fr", "name": "Élodie"}


def test_a_row_with_more_fields_than_the_header_is_a_problem_and_the_rest_goes_on(tmp_path):
    found = rows(write(tmp_path, "email,name\nada@example.com,Ada,extra,more\nbob@example.com,Bob\n"))
    assert found[0] == RowProblem(2, "4 fields, but the header names 2 columns",
                                  {"email": "ada@example.com", "name": "Ada"}, ("extra", "more"))
    assert found[1] == ContactRow("bob@example.com", {"name": "Bob"}, (3,))


def test_a_bad_json_line_is_a_row_problem(tmp_path):
    path = write(tmp_path, '{"email": "ada@example.com"}\n[1, 2]\n{"email": \n"just text"\n'
                           '{"email": "b@example.com", "email": "c@example.com"}\n'
                           '{"email": "d@example.com", "n": NaN}\n{"email": "e@example.com"}\n', "c.jsonl")
    found = rows(path)
    assert [(r.line, r.reason) for r in found if isinstance(r, RowProblem)] == [
        (2, "not a JSON object but a list"),
        (3, "not JSON (Expecting value at column 11)"),
        (4, "not a JSON object but a str"),
        (5, "field 'email' appears twice"),
        (6, "not JSON (not a JSON value)"),
    ]
    assert [r.line for r in found if isinstance(r, ContactRow)] == [1, 7]


@pytest.mark.parametrize(("value", "reason"), [
    ({"tier": "gold"}, "prefs: an object: an attribute is text, a number or true/false"),
    (["a", "b"], "prefs: a list: an attribute is text, a number or true/false"),
    (10 ** 40 + 1, "prefs: a number DynamoDB cannot store"),
    (1e-200, "prefs: a number DynamoDB cannot store"),
])
def test_a_json_value_that_is_no_attribute_names_its_field(tmp_path, value, reason):
    path = write(tmp_path, json.dumps({"email": "ada@example.com", "prefs": value}) + "\n", "c.jsonl")
    (problem,) = rows(path)
    assert problem.line == 1 and problem.reason.startswith(reason)


def test_a_row_whose_attributes_pass_350_kb_is_a_problem(tmp_path):
    # Each attribute counts its name and value, as DynamoDB sizes an item.
    fits = "b" * (MAX_ATTRIBUTE_BYTES - len("bio") - len("n") - 1)
    too_big = fits + "x"
    path = write(tmp_path, f"email,bio,n\nada@example.com,{fits},1\nbob@example.com,{too_big},1\n")
    ok, problem = rows(path)
    assert isinstance(ok, ContactRow) and len(ok.attributes["bio"]) == len(fits)
    assert problem.line == 3 and problem.reason.startswith(
        f"its attributes take {MAX_ATTRIBUTE_BYTES + 1:,} bytes, at most {MAX_ATTRIBUTE_BYTES:,} (350 KB: a "
        "DynamoDB item holds at most 400 KB")


# ---------------------------------------------------------------- the Lambda's path, merge, rejects


def test_parse_row_on_a_row_as_step_functions_reads_it_matches_the_file_reader(tmp_path):
    path = write(tmp_path, "Email Address,First Name,Plan\nADA@example.com,Ada,\n")
    with open_contacts(path) as contacts:
        (record,) = list(contacts)
    assert record == Record(2, {"Email Address": "ADA@example.com", "First Name": "Ada", "Plan": ""})
    assert parse_row({"Email Address": "ADA@example.com", "First Name": "Ada", "Plan": ""}, 2) == (
        parse_row(record.fields, record.line)) == ContactRow("ada@example.com", {"first_name": "Ada"}, (2,))
    with pytest.raises(ContactFileError, match=r"^s3://bucket/key.csv: line 7: field 'version' is sesflow's own"):
        parse_row({"email": "ada@example.com", "version": "3"}, 7, file="s3://bucket/key.csv")


def test_merge_lets_a_later_row_win_and_keeps_every_line():
    merged = merge([
        ContactRow("ada@example.com", {"plan": "free", "city": "Paris"}, (2,)),
        ContactRow("bob@example.com", {"plan": "pro"}, (3,)),
        ContactRow("ada@example.com", {"plan": "pro", "seats": 3}, (9,)),
    ])
    assert merged == [ContactRow("ada@example.com", {"plan": "pro", "city": "Paris", "seats": 3}, (2, 9)),
                      ContactRow("bob@example.com", {"plan": "pro"}, (3,))]
    assert merged[0].line == 2


def test_the_rejects_file_has_line_reason_and_the_row_as_it_was(tmp_path):
    path = write(tmp_path, "email,name\nnot-an-address,Ada\nbob@example.com,Bob,extra\n")
    out = io.StringIO()
    with open_contacts(path) as contacts:
        columns = contacts.reject_columns
    count = write_rejects(out, (r for r in read_rows(path) if isinstance(r, RowProblem)), columns)
    assert count == 2
    assert out.getvalue().splitlines() == [
        "line,reason,email,name",
        "2,email: not an email address SES sends to: no @,not-an-address,Ada",
        '3,"3 fields, but the header names 2 columns",bob@example.com,Bob,extra',
    ]
    assert rejects_path(path) == tmp_path / "contacts.csv.rejects.csv"


def test_the_rejects_of_json_lines_keep_each_line_as_it_was(tmp_path):
    path = write(tmp_path, '{"email": "nobody", "n": 1.50}\n{bad\n', "c.jsonl")
    out = io.StringIO()
    write_rejects(out, read_rows(path), None)
    assert out.getvalue().splitlines() == [
        "line,reason,record",
        '1,email: not an email address SES sends to: no @,"{""email"": ""nobody"", ""n"": 1.50}"',
        "2,not JSON (Expecting property name enclosed in double quotes at column 2),{bad",
    ]


# ---------------------------------------------------------------- memory


@pytest.mark.slow
def test_reading_a_200_mb_file_keeps_memory_low(tmp_path):
    path = tmp_path / "big.csv"
    note = "n" * 1000
    rows_written = 0
    with path.open("w") as out:
        out.write("email,first_name,plan,note\n")
        while out.tell() < 200 * 1024 * 1024:
            out.write("".join(f"user{rows_written + i}@example.com,Name{i},pro,{note}\n" for i in range(1000)))
            rows_written += 1000
    tracemalloc.start()
    try:
        summary = check_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert summary == Summary(rows_written, 0)
    assert peak < 50 * 1024 * 1024


def test_an_exports_status_and_lists_columns_are_read_as_nothing(tmp_path):
    path = write(tmp_path, "address,status,lists,first_name\nada@example.com,SUPPRESSED,news:UNSUBSCRIBED,Ada\n")
    (row,) = read_rows(path)
    assert row.attributes == {"first_name": "Ada"}
    with open_contacts(path) as opened:
        assert opened.ignored_columns == ("status", "lists")
