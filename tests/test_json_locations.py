from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from sdlint.diagnostic import Location
from sdlint.json_locations import key_locations, string_end

TEXT = """{
  "architectures": ["A", {"x": 1}],
  "id2label": {
    "0": "neg, \\"quoted\\" {",
    "1": "pos"
  },
  "text_config": {"vocab_size": 10}
}"""


def test_top_level_and_nested_keys() -> None:
    found = key_locations(TEXT)
    assert found["architectures"] == Location(2, 3)
    assert found["id2label"] == Location(3, 3)
    assert found["id2label.1"] == Location(5, 5)
    assert found["text_config"] == Location(7, 3)
    assert found["text_config.vocab_size"] == Location(7, 19)
    assert "x" not in found  # inside an array: only reachable through its object path
    assert "num_labels" not in found and found["id2label"] == Location(3, 3)


@given(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=6))
def test_every_top_level_key_points_at_its_quote(document: dict[str, object]) -> None:
    text = json.dumps(document, indent=2)
    lines = text.splitlines()
    found = key_locations(text)
    for key in document:
        where = found[key]
        assert lines[where.line - 1][where.column - 1 :].startswith(json.dumps(key) + ":")


def test_malformed_json_does_not_raise() -> None:
    assert key_locations('{"a": "unterminated') == {"a": Location(1, 2)}


def test_string_end() -> None:
    line = '  "a\\"b": "c\\\\", "open'
    assert line[2 : string_end(line, 2)] == '"a\\"b"'
    assert line[10 : string_end(line, 10)] == '"c\\\\"'
    assert string_end(line, 18) == len(line)  # not closed
