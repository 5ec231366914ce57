"""Verdicts round-trip through JSON exactly, and anything else is rejected."""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdlint.model.verdict import (
    CONFIG_PROBLEM_KINDS,
    FORMAT_VERSION,
    SCHEMA,
    AdapterMismatch,
    AdapterVerdict,
    ConfigProblem,
    ConversionError,
    LoadVerdict,
    Mismatch,
    Missing,
    Shadowed,
    Unexpected,
    WrapperPrefix,
    _field_type,
    _hints,
    decode,
    layout_fingerprint,
    schema,
)
from sdlint.record import fields, is_record

names = st.text(min_size=1, max_size=30)
shapes = st.lists(st.integers(min_value=0, max_value=2**63), max_size=4).map(tuple)
small = st.lists


def verdicts(depth: int = 1) -> st.SearchStrategy[LoadVerdict]:
    wrapper = (
        st.none()
        if depth == 0
        else st.none() | st.builds(WrapperPrefix, names, st.integers(0, 10**6), verdicts(depth - 1))
    )
    return st.builds(
        LoadVerdict,
        architecture=names,
        architecture_source=st.sampled_from(["argument", "config", "config-task", "model_type"]),
        model_type=st.none() | names,
        base_model_prefix=st.text(max_size=10),
        has_base_model=st.booleans(),
        transformers_version=names,
        dtype=names,
        config_dtype=st.none() | names,
        missing=small(st.builds(Missing, names, st.booleans()), max_size=3).map(tuple),
        unexpected=small(st.builds(Unexpected, names, names), max_size=3).map(tuple),
        mismatched=small(
            st.builds(
                Mismatch,
                names,
                st.none() | names,
                shapes,
                shapes,
                st.booleans(),
                small(names, max_size=3).map(tuple),
            ),
            max_size=3,
        ).map(tuple),
        conversion_errors=small(
            st.builds(ConversionError, names, st.text(), small(names, max_size=3).map(tuple)),
            max_size=2,
        ).map(tuple),
        shadowed=small(st.builds(Shadowed, names, names, names), max_size=2).map(tuple),
        wrapper_prefix=wrapper,
        notes=small(st.text(), max_size=2).map(tuple),
    )


@given(verdicts())
def test_verdict_round_trip(verdict: LoadVerdict) -> None:
    assert LoadVerdict.from_json(verdict.to_json()) == verdict
    assert decode(verdict.to_json().encode()) == verdict


@given(st.sampled_from(CONFIG_PROBLEM_KINDS), st.text())
def test_problem_round_trip(kind: str, message: str) -> None:
    problem = ConfigProblem(kind, message)
    assert ConfigProblem.from_json(problem.to_json()) == problem


def test_unknown_problem_kinds_are_rejected() -> None:
    """Only the kinds sdlint writes: a recorded verdict from elsewhere with another kind is a miss,
    and a misspelt kind in sdlint fails where it is made."""
    document = json.loads(ConfigProblem("invalid-config", "x").to_json())
    document["value"]["kind"] = "not-a-kind"
    with pytest.raises(ValueError, match="unknown config problem kind"):
        decode(json.dumps(document))
    with pytest.raises(ValueError):
        ConfigProblem("invalid_config", "x")


def test_type_confusion_is_rejected() -> None:
    problem = ConfigProblem("invalid-config", "x: y. z.")
    with pytest.raises(ValueError):
        LoadVerdict.from_json(problem.to_json())
    verdict = LoadVerdict("A", "config", None, "", False, "5.24.0", "float32", None)
    with pytest.raises(ValueError):
        ConfigProblem.from_json(verdict.to_json())


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        "[]",
        json.dumps(
            {
                "format": FORMAT_VERSION + 1,
                "type": "config_problem",
                "value": {"kind": "x", "message": "y"},
            }
        ),
        json.dumps({"format": FORMAT_VERSION, "schema": schema(), "type": "other", "value": {}}),
        json.dumps(
            {
                "format": FORMAT_VERSION,
                "schema": schema(),
                "type": "config_problem",
                "value": {"kind": "x"},
            }
        ),
        json.dumps(
            {
                "format": FORMAT_VERSION,
                "schema": schema(),
                "type": "config_problem",
                "value": {"kind": 1, "message": "y"},
            }
        ),
        json.dumps(
            {
                "format": FORMAT_VERSION,
                "schema": schema(),
                "type": "config_problem",
                "value": {"kind": "x", "message": "y", "z": 1},
            }
        ),
    ],
)
def test_foreign_documents_are_rejected(document: str) -> None:
    with pytest.raises(ValueError):
        decode(document)


def test_another_field_layout_is_rejected() -> None:
    """An entry written before a field was added, removed or reordered no longer decodes, without
    anyone bumping FORMAT_VERSION: the documents carry the layout's fingerprint."""
    document = ConfigProblem("invalid-config", "x").to_dict()
    assert decode(json.dumps(document)) == ConfigProblem("invalid-config", "x")
    for other in ("0" * 16, None):
        with pytest.raises(ValueError, match="schema"):
            decode(json.dumps({**document, "schema": other}))


def test_the_encoding_follows_the_record_fields() -> None:
    """Every field is written under its own name (records in tuples as rows in field order), so a
    new field in a dataclass is encoded and checked with no second edit."""
    verdict = LoadVerdict(
        "A",
        "config",
        "roberta",
        "roberta",
        True,
        "5.24.0",
        "float32",
        None,
        missing=(Missing("k", True, (2, 3)),),
        wrapper_prefix=WrapperPrefix(
            "module.", 1, LoadVerdict("A", "config", None, "", False, "5", "float32", None)
        ),
    )
    value = verdict.to_dict()["value"]
    assert list(value) == [f.name for f in fields(LoadVerdict)]
    assert value["missing"] == [["k", True, [2, 3]]]
    assert list(value["wrapper_prefix"]) == [f.name for f in fields(WrapperPrefix)]


def test_malformed_verdict_fields_are_rejected() -> None:
    good = json.loads(
        LoadVerdict(
            "A",
            "config",
            None,
            "",
            False,
            "5.24.0",
            "float32",
            None,
            mismatched=(Mismatch("k", "k", (1,), (2,), True, ("k",)),),
        ).to_json()
    )
    for field, bad in [
        ("has_base_model", "yes"),
        ("missing", [["k"]]),
        ("mismatched", [["k", "k", [-1], [2], True, ["k"]]]),
        ("mismatched", [["k", "k", [True], [2], True, ["k"]]]),
        ("wrapper_prefix", {"prefix": "m.", "keys": 1}),
    ]:
        document = json.loads(json.dumps(good))
        document["value"][field] = bad
        with pytest.raises(ValueError):
            decode(json.dumps(document))


def test_key_views_match_transformers_report_shapes() -> None:
    verdict = LoadVerdict(
        "A",
        "config",
        None,
        "m",
        True,
        "5.24.0",
        "float32",
        None,
        missing=(Missing("a", True, (2, 3)),),
        unexpected=(Unexpected("x.w1", "y.fused"), Unexpected("x.w3", "y.fused")),
        mismatched=(Mismatch("b", None, (3, 4), (4, 4), False, ("b1", "b2")),),
    )
    assert verdict.missing_keys == {"a"}
    assert verdict.unexpected_keys == {"y.fused"}
    assert verdict.mismatched_keys == {("b", (3, 4), (4, 4))}
    assert not verdict.is_clean
    assert LoadVerdict("A", "config", None, "", False, "5", "float32", None).is_clean


def test_schema_is_the_fingerprint_of_the_field_layout() -> None:
    """`SCHEMA` is a constant, so that a run derives nothing from type hints: a changed field
    fails this test until the constant is set to the new fingerprint (older entries then stop
    decoding, as they must)."""
    assert schema() == SCHEMA
    assert layout_fingerprint() == SCHEMA, (
        f"a verdict field changed: set SCHEMA to {layout_fingerprint()!r}"
    )


def _as_typing(tp: Any) -> Any:
    if isinstance(tp, tuple) and tp[0] == "tuple":
        return tuple[_as_typing(tp[1]), ...]  # type: ignore[misc]
    if isinstance(tp, tuple):
        return _as_typing(tp[1]) | None
    return tp


def test_field_types_are_read_as_typing_reads_them() -> None:
    """The codec reads each field's annotation by hand (sdlint/model/verdict.py `_field_type`,
    without importing typing): for every record a document can hold, typing's reading."""
    pending: list[Any] = [LoadVerdict, ConfigProblem, AdapterVerdict]
    seen: set[Any] = set()
    while pending:
        cls = pending.pop()
        if cls in seen:
            continue
        seen.add(cls)
        hints = typing.get_type_hints(cls)
        for name, tp in _hints(cls).items():
            assert _as_typing(tp) == hints[name], (cls.__name__, name)
            inner = tp
            while isinstance(inner, tuple):
                inner = inner[1]
            if is_record(inner):
                pending.append(inner)
    assert {Missing, Mismatch, WrapperPrefix, AdapterMismatch} <= seen


@pytest.mark.parametrize(
    "annotation", ["list[int]", "dict[str, int]", "float", "tuple[int, int]", "Any"]
)
def test_a_field_of_a_type_the_codec_does_not_know_is_refused(annotation: str) -> None:
    with pytest.raises(TypeError):
        _field_type(annotation)
