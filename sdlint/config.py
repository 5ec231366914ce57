"""Project configuration: `[tool.sdlint]` in pyproject.toml, or `sdlint.toml` / `.sdlint.toml`.

As in ruff, the configuration file nearest to a checked path wins (a folder's `.sdlint.toml`, then
`sdlint.toml`, then a `pyproject.toml` that has a `[tool.sdlint]` table; a pyproject.toml without
one is skipped), `--config FILE` names one file for every path, and `--isolated` reads none.
Globs and relative paths in a file are relative to the folder that holds it.

    [tool.sdlint]
    select = ["SD"]                     # rule codes or prefixes, as on the command line
    extend-select = ["SD105"]
    ignore = ["SD104"]
    cache-dir = ".cache/sdlint"
    fix = false                         # apply safe fixes by default
    unsafe-fixes = false
    head-fix = "config"                 # SD101 fix: "config" or "reinit"
    backup = false                      # keep the original next to a fixed file
    model-checks = "required"           # a skipped model check is a finding (SD108)
    baseline = "sdlint-baseline.json"   # report only findings not in this baseline
    verdicts = ".sdlint/verdicts"       # verdicts recorded for the light hook

    [tool.sdlint.per-file-ignores]      # glob -> codes
    "legacy/**" = ["SD104"]

    [tool.sdlint.model-config]          # glob -> the config.json to load into
    "checkpoints/sentiment/**" = "configs/roberta-5-labels.json"

    [tool.sdlint.architecture]          # glob -> class name
    "checkpoints/encoder/**" = "RobertaModel"
"""

from __future__ import annotations

import fnmatch
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from sdlint import memo
from sdlint.errors import UsageError
from sdlint.record import record
from sdlint.runcache import depend
from sdlint.sources import ReadError
from sdlint.sources.local import is_folder, is_regular_file, listed_names, read_bounded, real

TYPE_CHECKING = False  # typing is not imported at run time (a check has no use for it)
if TYPE_CHECKING:
    from typing import Any, TypeVar

    _T = TypeVar("_T")
CONFIG_FILES = (".sdlint.toml", "sdlint.toml", "pyproject.toml")
HEAD_FIXES = ("config", "reinit")
MODEL_CHECKS = ("auto", "cached", "off", "required")


@record
class ProjectConfig:
    """One configuration file's settings; `root` is the folder its globs are relative to."""

    path: Path | None = None
    root: Path = Path()
    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    model_configs: tuple[tuple[str, Path], ...] = ()
    architectures: tuple[tuple[str, str], ...] = ()
    cache_dir: Path | None = None
    fix: bool | None = None
    unsafe_fixes: bool | None = None
    head_fix: str | None = None
    backup: bool | None = None
    model_checks: str | None = None  # auto, cached, off or required (sdlint.engine.MODEL_CHECKS)
    baseline: Path | None = None
    verdicts: Path | None = None

    def relative(self, path: Path) -> PurePosixPath | None:
        """`path` relative to this file's folder, or None when it lies outside."""
        try:
            return PurePosixPath(_real(path).relative_to(_real(self.root)).as_posix())
        except ValueError:
            return None

    def ignored_codes(self, path: Path) -> list[str]:
        if not self.per_file_ignores:
            return []
        rel = self.relative(path)
        if rel is None:
            return []
        return [
            code for glob, codes in self.per_file_ignores if matches(glob, rel) for code in codes
        ]

    def model_config_for(self, path: Path) -> Path | None:
        if not self.model_configs:
            return None
        return _first_match(self.model_configs, self.relative(path))

    def architecture_for(self, path: Path) -> str | None:
        if not self.architectures:
            return None
        return _first_match(self.architectures, self.relative(path))


def _first_match(table: Sequence[tuple[str, _T]], rel: PurePosixPath | None) -> _T | None:
    if rel is None:
        return None
    return next((value for glob, value in table if matches(glob, rel)), None)


def matches(glob: str, rel: PurePosixPath) -> bool:
    """ruff-like: a glob matches the path, one of its parent folders, or (without a slash) the
    file name. `*` crosses folders here, so `models/*` covers everything below `models/`."""
    pattern = glob.rstrip("/")
    candidates = [rel.as_posix(), *(p.as_posix() for p in rel.parents if p.as_posix() != ".")]
    if "/" not in pattern:
        candidates.append(rel.name)
    pattern = pattern.replace("**/", "*").replace("/**", "/*")
    return any(fnmatch.fnmatchcase(c, pattern) for c in candidates)


def _real(path: Path) -> Path:
    """`path` after symlinks; unlike `Path.resolve`, never raises on a symlink loop."""
    return Path(real(path))


def find_config_file(start: Path) -> Path | None:
    """The configuration file nearest to `start` (a file or folder), walking up to the root.
    Within a run (sdlint/memo.py) each folder is looked at once: the checkpoints of one tree
    share the walk above their folders."""
    # Strings, not Paths: this runs for every checkpoint of a run.
    given = os.fspath(start)
    folder = real(given)
    depend(folder)
    listed_as = given  # the first folder as the run may have listed it (`listed_names`)
    if not is_folder(folder):
        folder = os.path.dirname(folder)  # noqa: PTH120
        listed_as = os.path.dirname(given) or os.curdir  # noqa: PTH120
        if real(listed_as) != folder:  # `start` is a symlink to another folder's file
            listed_as = folder
    known = memo.table("config-file")
    walked: list[str] = []
    found: Path | None = None
    while True:
        if known is not None and folder in known:
            found = known[folder]
            break
        walked.append(folder)
        found = _config_in(folder, listed_as)
        listed_as = os.path.dirname(folder)  # noqa: PTH120
        parent = os.path.dirname(folder)  # noqa: PTH120
        if found is not None or parent == folder:
            break
        folder = parent
    if known is not None:
        known.update(dict.fromkeys(walked, found))
    return found


def _config_in(directory: str, listed_as: str) -> Path | None:
    """The configuration file in `directory` itself, or None. A name the run's listing of the
    folder (under the name `listed_as`) lacks is not looked at again: 200 checkpoint folders, 600
    names."""
    listed = listed_names(listed_as)
    for name in CONFIG_FILES:
        candidate = os.path.join(directory, name)  # noqa: PTH118
        if listed is not None and name not in listed:
            depend(candidate)  # its absence is what the run saw
            continue
        if is_regular_file(candidate) and (
            name != "pyproject.toml" or _has_sdlint_table(Path(candidate))
        ):
            return Path(candidate)
    return None


def _toml() -> Any:
    """tomllib (tomli before 3.11), imported when a TOML file is read: most runs read none."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover (Python 3.10)
        import tomli as tomllib
    return tomllib


def _has_sdlint_table(pyproject: Path) -> bool:
    try:
        text = read_bounded(pyproject).decode("utf-8")
    except (ReadError, UnicodeDecodeError):
        return False
    if "sdlint" not in text and "\\u" not in text and "\\U" not in text:
        # No key `sdlint` without the word, or a \u escape in a quoted key: neither tomllib (and
        # the typing and datetime it imports) nor a parse for a project that does not use sdlint.
        return False
    tomllib = _toml()
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        # Broken TOML that mentions sdlint is ours to report (load_config says where); any other
        # broken pyproject.toml is not our business.
        return "sdlint" in text
    tool = document.get("tool")
    return isinstance(tool, dict) and "sdlint" in tool


def load_config(path: Path) -> ProjectConfig:
    """Read and validate one configuration file. Raises UsageError naming the file and key."""
    tomllib = _toml()
    try:
        document = tomllib.loads(read_bounded(path).decode("utf-8"))
    except ReadError as e:  # missing, not a regular file (a FIFO never blocks), too large
        reason = e.reason.removeprefix("cannot read the file: ")
        raise UsageError(f"cannot read {path}: {reason}") from e
    except UnicodeDecodeError as e:
        raise UsageError(f"{path} is not UTF-8 text") from e
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path} is not valid TOML: {e}") from e
    table: Any = document
    where = ""
    if path.name == "pyproject.toml":
        table = document.get("tool", {}).get("sdlint", {})
        where = "tool.sdlint."
    if not isinstance(table, dict):
        raise UsageError(f"{path}: `{where.rstrip('.')}` must be a table")
    return _parse(table, path, where)


_KEYS = (
    "select",
    "extend-select",
    "ignore",
    "per-file-ignores",
    "model-config",
    "architecture",
    "cache-dir",
    "fix",
    "unsafe-fixes",
    "head-fix",
    "backup",
    "model-checks",
    "baseline",
    "verdicts",
)


def _parse(table: Mapping[str, Any], path: Path, where: str) -> ProjectConfig:
    unknown = [key for key in table if key not in _KEYS]
    if unknown:
        raise UsageError(
            f"{path}: unknown key `{where}{unknown[0]}`; allowed keys: {', '.join(_KEYS)}"
        )
    root = path.parent

    def fail(key: str, expected: str) -> UsageError:
        return UsageError(f"{path}: `{where}{key}` must be {expected}, got {table[key]!r}")

    def codes(key: str) -> tuple[str, ...] | None:
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise fail(key, 'a list of rule codes or prefixes such as ["SD1", "SD004"]')
        _check_selectors(value, path, where + key)
        return tuple(value)

    def flag(key: str) -> bool | None:
        if key in table and not isinstance(table[key], bool):
            raise fail(key, "true or false")
        return table.get(key)

    def glob_table(key: str, kind: type, expected: str) -> tuple[tuple[str, Any], ...]:
        if key not in table:
            return ()
        value = table[key]
        if isinstance(value, kind):  # one value for every path
            return (("*", value),)
        if not isinstance(value, dict) or not all(isinstance(v, kind) for v in value.values()):
            raise fail(key, f"{expected}, or a table of glob -> {expected}")
        return tuple(value.items())

    per_file: list[tuple[str, tuple[str, ...]]] = []
    raw_ignores = table.get("per-file-ignores", {})
    if not isinstance(raw_ignores, dict):
        raise fail("per-file-ignores", "a table of glob -> list of rule codes")
    for glob, value in raw_ignores.items():
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise UsageError(
                f'{path}: `{where}per-file-ignores."{glob}"` must be a list of rule codes, '
                f"got {value!r}"
            )
        _check_selectors(value, path, f'{where}per-file-ignores."{glob}"')
        per_file.append((glob, tuple(c.upper() for c in value)))

    head_fix = table.get("head-fix")
    if head_fix is not None and head_fix not in HEAD_FIXES:
        raise fail("head-fix", " or ".join(f'"{h}"' for h in HEAD_FIXES))
    model_checks = table.get("model-checks")
    if model_checks is not None and model_checks not in MODEL_CHECKS:
        raise fail("model-checks", " or ".join(f'"{m}"' for m in MODEL_CHECKS))
    cache_dir = table.get("cache-dir")
    if cache_dir is not None and not isinstance(cache_dir, str):
        raise fail("cache-dir", "a folder path")
    baseline = table.get("baseline")
    if baseline is not None and not isinstance(baseline, str):
        raise fail("baseline", "a file path")
    verdicts = table.get("verdicts")
    if verdicts is not None and not isinstance(verdicts, str):
        raise fail("verdicts", "a folder path")

    return ProjectConfig(
        path=path,
        root=root,
        select=codes("select"),
        extend_select=codes("extend-select") or (),
        ignore=codes("ignore") or (),
        per_file_ignores=tuple(per_file),
        model_configs=tuple(
            (glob, root / value) for glob, value in glob_table("model-config", str, "a path")
        ),
        architectures=glob_table("architecture", str, "a class name"),
        cache_dir=root / cache_dir if cache_dir is not None else None,
        fix=flag("fix"),
        unsafe_fixes=flag("unsafe-fixes"),
        head_fix=head_fix,
        backup=flag("backup"),
        model_checks=model_checks,
        baseline=root / baseline if baseline is not None else None,
        verdicts=root / verdicts if verdicts is not None else None,
    )


def _check_selectors(values: Sequence[str], path: Path, key: str) -> None:
    from sdlint.registry import validate_selectors

    try:
        validate_selectors(values)
    except UsageError as e:
        raise UsageError(f"{path}: `{key}`: {e}") from None


class ConfigResolver:
    """Finds and caches the configuration in force for each checked path."""

    def __init__(self, *, config_file: Path | None = None, isolated: bool = False) -> None:
        self._fixed = None if config_file is None else load_config(config_file)
        self._isolated = isolated
        self._loaded: dict[Path, ProjectConfig] = {}

    def for_path(self, path: Path) -> ProjectConfig:
        if self._fixed is not None:
            return self._fixed
        if self._isolated:
            return ProjectConfig()
        found = find_config_file(path)
        if found is None:
            return ProjectConfig()
        if found not in self._loaded:
            self._loaded[found] = load_config(found)
        return self._loaded[found]
