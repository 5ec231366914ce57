"""The wrapper-prefix policy SD106 and the oracle share (sdlint/wrappers.py)."""

from __future__ import annotations

import pytest

from sdlint import wrappers


@pytest.mark.parametrize(
    ("keys", "prefix"),
    [
        (["module.a", "module.b"], "module."),
        (["_orig_mod.a"], "_orig_mod."),
        (["module._orig_mod.a", "module._orig_mod.b"], "module._orig_mod."),
        (["module.a", "b"], None),  # one key without it: not from the header alone
        (["roberta.a", "roberta.b"], None),  # a base-model prefix is not a wrapper
        ([], None),
        (["module.module.module.module.a"], "module.module.module."),  # at most MAX_DEPTH
    ],
)
def test_known_prefix(keys: list[str], prefix: str | None) -> None:
    assert wrappers.known_prefix(keys) == prefix


def test_common_component_needs_the_suspect_share() -> None:
    keys = [f"model.w{i}" for i in range(9)] + ["head"]
    assert wrappers.common_component(keys) == "model"  # 9 of 10
    assert wrappers.common_component([*keys, "other.w"]) is None  # 9 of 11


def test_strip_lets_a_stripped_key_win_as_the_rename_would() -> None:
    assert wrappers.strip({"a": 1, "module.a": 2, "module.b": 3}, "module.") == {"a": 2, "b": 3}


def test_origin() -> None:
    assert wrappers.origin("module._orig_mod.") == "DistributedDataParallel and torch.compile"
    assert wrappers.origin("net.") == ""
