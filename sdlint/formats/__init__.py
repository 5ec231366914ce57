"""What the bytes mean: each format reads its files through a `Source` and describes them the same
way, so the checkpoint, the model rules and the model layer never depend on the format.

A format module (`safetensors.py`, `pickle.py`) gives, for each weights file, either a description
(a `FileDescription`: its path, its `format`, and its tensors as `Tensor`s) or a value saying why
it has none (`Unreadable`, `LfsPointer`). The integrity
rules of a format read its own richer description (safetensors' `Header` with every entry as
written); everything else reads only what is defined here.
"""

from __future__ import annotations

from collections.abc import Mapping

from sdlint.record import record
from sdlint.sources import FileRef

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol
else:  # typing is not imported at run time (a check has no use for it): for the
    Protocol = object  # interpreter the protocols below are plain classes

# Format names: `Checkpoint.format`, `FileDescription.format`, and what rules declare they check.
SAFETENSORS = "safetensors"
PICKLE = "pickle"


@record
class TensorSpec:
    """A tensor as the model layer sees it: dtype name and shape, in any format.

    Dtype names are safetensors' for every format ("F32", "BF16", "I64", ...:
    sdlint/dtypes.py); a format with other names translates them when it reads. `earlier` holds
    the copies of a key that earlier shards also hold, in load order (this spec is the last
    shard's copy): transformers 4.x compares every copy's shape with the model, 5.x only the last.
    """

    dtype: str
    shape: tuple[int, ...]
    earlier: tuple[TensorSpec, ...] = ()


@record
class Tensor:
    """One well-formed tensor of a weights file, in any format.

    `span` is the tensor's bytes `[begin, end)` where the format has one place for them
    (safetensors: relative to the data section); None where it has not.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def span(self) -> tuple[int, int] | None:
        return None

    @property
    def spec(self) -> TensorSpec:
        return TensorSpec(self.dtype, self.shape)


class FileDescription(Protocol):
    """A weights file that could be read: what every format gives the checkpoint."""

    @property
    def path(self) -> FileRef: ...

    @property
    def format(self) -> str: ...

    @property
    def tensors(self) -> Mapping[str, Tensor]:
        """Well-formed tensors by name, in file order; a name given twice keeps the one the
        format's loader keeps."""
        ...


@record
class Unreadable:
    """A weights file that cannot be read at all (for safetensors: SD001)."""

    path: FileRef
    reason: str
    format: str = SAFETENSORS


@record
class LfsPointer:
    """A Git LFS pointer file standing where the weights should be (SD005)."""

    path: FileRef
    oid: str | None
    size: int | None
