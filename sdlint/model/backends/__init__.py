"""The backends: one per transformers loading code, and the one place that picks among them.

A backend reproduces `cls.from_pretrained(dir, output_loading_info=True,
ignore_mismatched_sizes=True)` of the installed transformers on meta tensors shaped from the
headers. It receives the parsed config.json (never a path) and resolves the model class itself.

- `transformers_v4.py`: 4.54 to 4.57 (`_load_pretrained_model`'s global prefix decision,
  `_fix_state_dict_key_on_load`, buffers, tied groups, ignore lists).
- `transformers_v5.py`: 5.0 to 5.24 (the conversion registry, per-key prefixes, converter ops,
  ties, ignore lists), calling each private function the way the installed minor declares it.

`select` is the only version check: by range of the installed version's major.minor. Inside a
range, differences between minors are feature-detected where the call is made (`_common.call`).
A version outside every range is a usage fact (SD107 naming the version and the supported
range), never a config fault.
"""

from __future__ import annotations

import re
from typing import Any

from sdlint.model.backends._common import SUPPORTED, Backend, unsupported_version
from sdlint.model.backends.classes import ModelClass
from sdlint.model.verdict import ConfigProblem

__all__ = ["SUPPORTED", "Backend", "ModelClass", "select"]


# (first major.minor, first major.minor past the range, backend module)
_RANGES = (
    ((4, 54), (5, 0), "transformers_v4"),
    ((5, 0), (6, 0), "transformers_v5"),
)


def select(transformers: Any, torch: Any) -> Backend | ConfigProblem:
    """The backend for the installed transformers (its `__version__`), or why there is none.

    5.x minors newer than the last tested one get the 5.x backend: its feature detection either
    serves them or reports them unsupported, naming what changed.
    """
    version = str(transformers.__version__)
    found = re.match(r"(\d+)\.(\d+)", version)
    if found is None:
        return unsupported_version(version, "sdlint cannot read its version number")
    minor = (int(found.group(1)), int(found.group(2)))
    for first, past, name in _RANGES:
        if first <= minor < past:
            if name == "transformers_v4":
                from sdlint.model.backends.transformers_v4 import TransformersV4

                return TransformersV4(transformers, torch)
            from sdlint.model.backends.transformers_v5 import TransformersV5

            return TransformersV5(transformers, torch)
    return unsupported_version(version, "sdlint does not reproduce its key matching")
