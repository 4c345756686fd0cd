"""sesflow.files and sesflow.errors: one wording for an operator's file or value that cannot be used."""

import argparse

import pytest

from sesflow.errors import InputError, email_address, port_number, positive_number, report
from sesflow.files import read_json_object, read_text


@pytest.mark.parametrize("content, message", [
    (None, "cannot read it (No such file or directory)"),
    (b"", "empty: a thing is a JSON object"),
    (b"  \n", "empty: a thing is a JSON object"),
    (b"caf\xe9", "not UTF-8 text (byte 3)"),
    (b'{"a": 1,}', "not JSON (Expecting property name enclosed in double quotes at line 1, column 9)"),
    (b'"text"', "a thing is a JSON object, got a string"),
    (b"null", "a thing is a JSON object, got null"),
    (b"[{}]", "a thing is a JSON object, got a list"),
])
def test_a_json_object_file_that_cannot_be_used_is_named_with_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "thing.json"
    if content is not None:
        path.write_bytes(content)

    with pytest.raises(InputError) as refused:
        read_json_object(path, "a thing is a JSON object")

    assert str(refused.value) == f"{path}: {message}"


def test_a_folder_is_not_a_file(tmp_path):
    with pytest.raises(InputError, match=r": cannot read it \(Is a directory\)$"):
        read_text(tmp_path)


def test_the_exit_code_says_whose_move_it_is(capsys):
    assert report(InputError("x.json: empty")) == 2
    assert report(LookupError("no campaign x on local")) == 1
    assert capsys.readouterr().err == "sesflow: x.json: empty\nsesflow: no campaign x on local\n"


def test_an_address_is_refused_in_one_wording():
    assert email_address(" Ada <Ada@Example.com>") == "ada@example.com"
    with pytest.raises(InputError, match=r"^--to: 'ada\.example\.com' is not an email address SES sends to \(no @\)$"):
        email_address("ada.example.com", "--to")


@pytest.mark.parametrize("parse, text", [(positive_number, "0"), (positive_number, "-1"), (positive_number, "inf"),
                                         (positive_number, "soon"), (port_number, "65536"), (port_number, "-1"),
                                         (port_number, "http")])
def test_an_option_value_out_of_range_is_refused(parse, text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse(text)


def test_option_values_in_range_pass():
    assert positive_number("0.5") == 0.5 and port_number("0") == 0 and port_number("4599") == 4599
