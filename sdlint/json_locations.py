"""Where a key sits in a JSON text (1-based line and column), so a diagnostic about `num_labels`
or `vocab_size` can point an editor at the line to change."""

from __future__ import annotations

import json

from sdlint.diagnostic import Location


def key_locations(text: str) -> dict[str, Location]:
    """Every object key by its dotted path (`text_config.vocab_size`), at the key's opening quote.

    A small scanner rather than a parser: it only needs strings, nesting and which string is a
    key; malformed JSON yields whatever it could place (the caller falls back to 1:1).
    """
    found: dict[str, Location] = {}
    # One frame per open container: [is_object, expecting_key, key of the current member]
    stack: list[list[object]] = []
    line, column, i = 1, 1, 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            start = Location(line, column)
            j = string_end(text, i)
            raw = _decode(text[i + 1 : j - 1])
            if stack and stack[-1][0] and stack[-1][1]:
                frame = stack[-1]
                frame[1], frame[2] = False, raw
                path = ".".join(str(f[2]) for f in stack if f[0] and f[2] is not None)
                found.setdefault(path, start)
            column += j - i
            i = j
            continue
        if ch in "{[":
            stack.append([ch == "{", ch == "{", None])
        elif ch in "}]":
            if stack:
                stack.pop()
        elif ch == "," and stack and stack[-1][0]:
            stack[-1][1], stack[-1][2] = True, None
        if ch == "\n":
            line, column = line + 1, 1
        else:
            column += 1
        i += 1
    return found


def string_end(text: str, start: int) -> int:
    """The index just past the JSON string whose opening quote is `text[start]`; the end of the
    text when the string is not closed."""
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == '"':
            return i + 1
        else:
            i += 1
    return len(text)


def _decode(raw: str) -> str:
    try:
        return str(json.loads(f'"{raw}"'))
    except ValueError:
        return raw
