"""The one check of a request's inputs against what its workflow declares."""

import pytest
from django.core.exceptions import ValidationError

from portal import workflow_inputs

DECLARED = workflow_inputs.parse(
    """[
    {"name": "age", "type": "int"},
    {"name": "ratio", "type": "float", "required": false},
    {"name": "fast", "type": "boolean", "default": false},
    {"name": "region", "type": "string", "allowed": ["north", "south"], "required": false},
    {"name": "codes", "type": "File", "required": false}
]"""
)


def problems(values, files=()):
    with pytest.raises(ValidationError) as caught:
        workflow_inputs.check(DECLARED, values, files, workflow_name="Counts 1")
    return {name: " ".join(messages) for name, messages in caught.value.message_dict.items()}


def test_values_are_converted_to_their_declared_types():
    assert workflow_inputs.check(
        DECLARED, {"age": " 18 ", "ratio": "0.5", "fast": "True", "region": "north"}
    ) == {
        "age": 18,
        "ratio": 0.5,
        "fast": True,
        "region": "north",
    }
    # JSON values from the API keep their types; optional inputs left out take the workflow's default.
    assert workflow_inputs.check(DECLARED, {"age": 21, "fast": False}) == {"age": 21, "fast": False}


@pytest.mark.parametrize(
    ("values", "name", "message"),
    [
        ({}, "age", "age is required (whole number)."),
        ({"age": "   "}, "age", "age is required (whole number)."),
        ({"age": "18.5"}, "age", "age must be a whole number; '18.5' is not."),
        ({"age": 18.5}, "age", "age must be a whole number; '18.5' is not."),
        ({"age": True}, "age", "age must be a whole number; 'true' is not."),
        ({"age": 1, "ratio": "half"}, "ratio", "ratio must be a number; 'half' is not."),
        ({"age": 1, "fast": "yes"}, "fast", "fast must be true or false; 'yes' is not."),
        ({"age": 1, "region": "east"}, "region", "region must be one of north, south, not 'east'."),
        ({"age": 1, "codes": "x"}, "codes", "codes is a file: attach it rather than typing a value."),
        (
            {"age": 1, "colour": "red"},
            "colour",
            "Counts 1 has no input called 'colour'; it takes age, codes, fast, ratio, region.",
        ),
    ],
)
def test_wrong_inputs_are_named_with_what_is_wrong(values, name, message):
    assert problems(values)[name] == message


def test_file_inputs():
    assert problems({}, files=["age"])["age"] == "age is a whole number, not a file."
    required = workflow_inputs.parse('[{"name": "codes", "type": "File"}]')
    with pytest.raises(ValidationError, match="codes is required: attach the file."):
        workflow_inputs.check(required, {})
    assert workflow_inputs.check(required, {}, ["codes"]) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "The inputs are not valid JSON"),
        ('{"name": "a"}', "Give the inputs as a JSON list"),
        ('[{"type": "int"}]', "Input 1 needs a name."),
        ('[{"name": "a"}, {"name": "a"}]', "Input 'a' is declared twice."),
        ('[{"name": "a", "type": "date"}]', "the type must be one of string, int, float, boolean, File"),
        ('[{"name": "a", "type": "int", "default": "x"}]', "a must be a whole number"),
    ],
)
def test_a_declaration_given_by_hand_is_checked(text, message):
    with pytest.raises(ValidationError, match=message):
        workflow_inputs.parse(text)


def test_an_input_with_a_default_is_optional_unless_said_otherwise():
    declared = workflow_inputs.parse('[{"name": "year", "type": "int", "default": 2025}]')
    assert declared[0]["required"] is False
    assert workflow_inputs.describe(declared[0]) == "year (whole number, optional, default 2025)"


def test_cwl_without_inputs_or_with_types_the_builder_cannot_offer():
    with pytest.raises(ValueError, match="declares no inputs"):
        workflow_inputs.from_cwl("class: Workflow\n")
    with pytest.raises(ValueError, match="input 'reads' has a type the request builder cannot offer"):
        workflow_inputs.from_cwl("inputs:\n  reads: File[]\n")
