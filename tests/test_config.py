"""Project configuration: discovery (nearest file wins), layering under the command line,
per-path model targets, and clear errors for bad values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdlint.cli import main
from sdlint.config import find_config_file, load_config, matches
from tests.safetensors_files import header_for, write_raw, write_tensors

LEADING_SPACE_HEADER = "  " + json.dumps(header_for({"w": ("F32", (2,))})[0])


def warning_file(path: Path) -> Path:
    """A file with one SD001 warning (whitespace before the JSON)."""
    return write_raw(path, LEADING_SPACE_HEADER, b"\0" * 8)


def codes(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    code = main(["check", "--output-format", "json", *argv])
    out, err = capsys.readouterr()
    if code == 2:
        return code, [err]
    return code, [f"{d['path']}:{d['code']}" for d in json.loads(out)]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_nearest_configuration_wins(capsys: pytest.CaptureFixture[str]) -> None:
    Path("pyproject.toml").write_text('[tool.sdlint]\nignore = ["SD001"]\n')
    warning_file(Path("a/model.safetensors"))
    warning_file(Path("b/model.safetensors"))
    Path("b/sdlint.toml").write_text("select = ['SD']\n")  # no ignore here: the warning shows
    assert codes(capsys, ".") == (1, ["b/model.safetensors:SD001"])
    assert codes(capsys, "--isolated", ".")[1] == [
        "a/model.safetensors:SD001",
        "b/model.safetensors:SD001",
    ]
    assert codes(capsys, "--config", "pyproject.toml", ".") == (0, [])


def test_file_precedence_and_pyproject_without_table(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "sdlint.toml").write_text("")
    assert find_config_file(tmp_path / "sub") == tmp_path / "sdlint.toml"
    (tmp_path / ".sdlint.toml").write_text("")
    assert find_config_file(tmp_path / "sub" / "x.safetensors") == tmp_path / ".sdlint.toml"


@pytest.mark.parametrize(
    ("text", "ours"),
    [
        ("[project]\nname = 'x'\n", False),
        ("[tool.sdlint]\n", True),
        ("[tool]\nsdlint = {}\n", True),
        ('[tool."\\u0073dlint"]\n', True),  # the name only as an escape in a quoted key
        ('[tool."\\U00000073dlint"]\n', True),
        ("[tool.ruff]\nextend-exclude = ['C:\\Users']\n", False),
        ("[project\nname = 'sdlint'\n", True),  # broken TOML that mentions sdlint: reported
        ("[project\nname = 'x'\n", False),  # any other broken pyproject.toml: not ours
    ],
)
def test_pyproject_with_an_sdlint_table(tmp_path: Path, text: str, ours: bool) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    assert (find_config_file(tmp_path) is not None) is ours


def test_command_line_overrides_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    Path("sdlint.toml").write_text('ignore = ["SD001"]\n')
    warning_file(Path("model.safetensors"))
    assert codes(capsys, ".") == (0, [])
    assert codes(capsys, ".", "--select", "SD001") == (1, ["model.safetensors:SD001"])
    assert codes(capsys, ".", "--extend-select", "SD001") == (1, ["model.safetensors:SD001"])


def test_per_file_ignores(capsys: pytest.CaptureFixture[str]) -> None:
    Path("sdlint.toml").write_text(
        '[per-file-ignores]\n"legacy/**" = ["SD0"]\n"*.bak.safetensors" = ["SD001"]\n'
    )
    warning_file(Path("legacy/old/model.safetensors"))
    warning_file(Path("new/model.safetensors"))
    warning_file(Path("new/x.bak.safetensors"))
    assert codes(capsys, ".") == (1, ["new/model.safetensors:SD001"])


def test_per_file_ignores_all(capsys: pytest.CaptureFixture[str]) -> None:
    Path("sdlint.toml").write_text('[per-file-ignores]\n"*.safetensors" = ["ALL"]\n')
    warning_file(Path("models/a/model.safetensors"))
    assert codes(capsys, ".") == (0, [])
    Path("sdlint.toml").write_text('[per-file-ignores]\n"other/*" = ["ALL"]\n')
    assert codes(capsys, ".") == (1, ["models/a/model.safetensors:SD001"])


@pytest.mark.parametrize(
    ("glob", "path", "expected"),
    [
        ("legacy/**", "legacy/a/b.safetensors", True),
        ("legacy", "legacy/a/b.safetensors", True),
        ("legacy/*", "legacy/a/b.safetensors", True),
        ("*.safetensors", "x/y/model.safetensors", True),
        ("models/a/*", "models/b/model.safetensors", False),
        ("**/shard-*.safetensors", "m/shard-1.safetensors", True),
    ],
)
def test_globs(glob: str, path: str, expected: bool) -> None:
    from pathlib import PurePosixPath

    assert matches(glob, PurePosixPath(path)) is expected


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "[tool.sdlint]\nselect = 'SD1'\n",
            "`tool.sdlint.select` must be a list of rule codes or prefixes",
        ),
        ("[tool.sdlint]\nselect = ['XX9']\n", "`tool.sdlint.select`: unknown rule selector 'XX9'"),
        (
            "[tool.sdlint]\nhead-fix = 'maybe'\n",
            '`tool.sdlint.head-fix` must be "config" or "reinit", got \'maybe\'',
        ),
        ("[tool.sdlint]\nfix = 'yes'\n", "`tool.sdlint.fix` must be true or false, got 'yes'"),
        (
            "[tool.sdlint]\nselct = []\n",
            "unknown key `tool.sdlint.selct`; allowed keys: select, extend-select",
        ),
        (
            "[tool.sdlint.per-file-ignores]\n'a/*' = 'SD1'\n",
            '`tool.sdlint.per-file-ignores."a/*"` must be a list of rule codes',
        ),
        (
            "[tool.sdlint.model-config]\n'a/*' = 3\n",
            "`tool.sdlint.model-config` must be a path, or a table of glob -> a path",
        ),
        ("[tool.sdlint\n", "is not valid TOML"),
    ],
)
def test_bad_configuration_is_a_usage_error(
    content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("pyproject.toml").write_text(content)
    write_tensors(Path("model.safetensors"), {"w": ("F32", (2,))})
    code, (err,) = codes(capsys, ".")
    assert code == 2
    assert err.startswith("sdlint: error: ") and "pyproject.toml" in err and message in err, err
    assert err.count("\n") == 1


def test_load_config_values(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        "[tool.sdlint]\nselect = ['SD']\ncache-dir = '.cache'\nunsafe-fixes = true\nhead-fix = 'reinit'\n"
        "[tool.sdlint.model-config]\n'cls/**' = 'configs/five.json'\n"
        "[tool.sdlint.architecture]\n'enc/**' = 'RobertaModel'\n"
    )
    config = load_config(path)
    assert config.select == ("SD",) and config.unsafe_fixes is True and config.head_fix == "reinit"
    assert config.cache_dir == tmp_path / ".cache"
    assert (
        config.model_config_for(tmp_path / "cls" / "model.safetensors")
        == tmp_path / "configs" / "five.json"
    )
    assert config.model_config_for(tmp_path / "enc" / "model.safetensors") is None
    assert config.architecture_for(tmp_path / "enc" / "x" / "model.safetensors") == "RobertaModel"


def test_missing_config_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    write_tensors(Path("model.safetensors"), {"w": ("F32", (2,))})
    code, (err,) = codes(capsys, "--config", "absent.toml", ".")
    assert code == 2 and "cannot read absent.toml" in err


@pytest.mark.model
def test_model_config_per_glob(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("transformers")
    from tests.tiny_models import save_config, save_roberta

    save_roberta(Path("models/sentiment"))
    save_roberta(Path("models/encoder"), "RobertaModel")
    save_config(Path("configs/five"), num_labels=5)
    capsys.readouterr()
    Path("pyproject.toml").write_text(
        "[tool.sdlint.model-config]\n'models/sentiment' = 'configs/five/config.json'\n"
        "[tool.sdlint.architecture]\n'models/encoder/**' = 'RobertaForSequenceClassification'\n"
    )
    code, found = codes(capsys, "models")
    assert code == 1
    assert sorted(set(found)) == [
        "models/encoder/model.safetensors:SD103",
        "models/encoder/model.safetensors:SD104",
        "models/sentiment/model.safetensors:SD101",
    ]
