"""The backends: one per transformers loading code, picked in one place by version range; a
version no backend serves, or a loading function whose signature changed, is a usage fact (SD107
naming the version and the supported range), never advice to fix config.json."""

from __future__ import annotations

import importlib.util
import inspect
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sdlint.config_fields import read_config
from sdlint.model import ConfigProblem
from sdlint.model import verdict as v
from sdlint.model.backends import SUPPORTED, select
from sdlint.model.backends._common import Unsupported, call
from sdlint.model.backends.transformers_v4 import TransformersV4
from sdlint.model.backends.transformers_v5 import TransformersV5
from sdlint.model.oracle import predict_load
from tests.verdicts import BASE_SIGNATURE, TINY_ROBERTA


def fake(version: str) -> Any:
    return SimpleNamespace(__version__=version)


@pytest.mark.parametrize(
    ("version", "backend"),
    [
        ("4.54.1", TransformersV4),
        ("4.57.6", TransformersV4),
        ("5.0.0", TransformersV5),
        ("5.12.1", TransformersV5),
        ("5.24.0", TransformersV5),
        ("5.30.0.dev0", TransformersV5),  # newer: the 5.x backend detects what it offers
    ],
)
def test_select_by_version_range(version: str, backend: type) -> None:
    assert isinstance(select(fake(version), None), backend)


@pytest.mark.parametrize("version", ["4.53.3", "4.38.0", "3.5.1", "6.0.0", "main"])
def test_unserved_version_is_a_usage_fact(version: str) -> None:
    problem = select(fake(version), None)
    assert isinstance(problem, ConfigProblem)
    assert problem.kind == v.UNSUPPORTED_VERSION
    assert f"transformers {version} is not supported" in problem.message
    assert SUPPORTED in problem.message
    assert "config" not in problem.message.lower()


def test_call_passes_what_the_signature_takes() -> None:
    def old(dtype: str, is_quantized: bool) -> tuple[str, bool]:
        return dtype, is_quantized

    def new(dtype: str, is_quantized: bool, allow_all_kernels: bool | None) -> tuple[Any, ...]:
        return dtype, is_quantized, allow_all_kernels

    values = {"dtype": "f32", "is_quantized": False, "allow_all_kernels": None, "tp_plan": None}
    assert call(old, values) == ("f32", False)
    assert call(new, values) == ("f32", False, None)


def test_call_refuses_an_unknown_required_parameter() -> None:
    def changed(dtype: str, device_plan: dict[str, str]) -> None:
        raise AssertionError("must not be called")

    with pytest.raises(Unsupported, match="requires `device_plan`"):
        call(changed, {"dtype": "f32"})


# ---------------------------------------------------------------------------------------------
# With the installed transformers: a changed signature or an exception inside its loading code.

needs_model = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None,
    reason="needs torch and transformers",
)
ROBERTA = TINY_ROBERTA
SIGNATURE = BASE_SIGNATURE


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(ROBERTA))
    return path


@pytest.mark.model
@needs_model
def test_changed_loading_signature_is_unsupported_not_a_config_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """transformers 5.0 failed this way before: `get_init_context() takes 4 positional arguments
    but 5 were given`, reported as a config fault."""
    import transformers

    def get_init_context(cls: Any, dtype: Any, new_required_flag: bool) -> list[Any]:
        raise AssertionError("must not be called")

    monkeypatch.setattr(
        transformers.PreTrainedModel, "get_init_context", classmethod(get_init_context)
    )
    result = predict_load(read_config(_config(tmp_path)), SIGNATURE)
    assert isinstance(result, ConfigProblem), result
    assert result.kind == v.UNSUPPORTED_VERSION
    assert f"transformers {transformers.__version__} is not supported" in result.message
    assert "new_required_flag" in result.message and SUPPORTED in result.message
    assert "Fix the config" not in result.message


@pytest.mark.model
@needs_model
def test_exception_inside_transformers_loading_is_reported_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers

    original = transformers.PreTrainedModel.get_init_context.__func__  # type: ignore[attr-defined]

    def failing(cls: Any, *args: Any, **kwargs: Any) -> list[Any]:
        raise RuntimeError("boom in transformers")

    failing.__signature__ = inspect.signature(original)  # type: ignore[attr-defined]
    monkeypatch.setattr(transformers.PreTrainedModel, "get_init_context", classmethod(failing))
    result = predict_load(read_config(_config(tmp_path)), SIGNATURE)
    assert isinstance(result, ConfigProblem), result
    assert result.kind == v.LOAD_FAILED
    assert (
        f"transformers {transformers.__version__} raised an unexpected exception" in result.message
    )
    assert "RuntimeError: boom in transformers" in result.message
    assert "Fix the config" not in result.message
