"""SD006-SD010: torch.save checkpoints (pickles), read without running them.

SD006 names every global a pickle imports outside the allow-list of what torch.save writes for
tensors; SD007-SD009 are the pickle-side counterparts of the safetensors integrity rules: a file
that cannot be read, storages that do not hold what the tensors need, content that is not a state
dict of plain tensors. SD010 notes a clean one, and its fix converts it to safetensors.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from sdlint.context import CheckContext
from sdlint.diagnostic import Applicability, Fix, Severity
from sdlint.discover import loaded_by_name
from sdlint.formats import PICKLE
from sdlint.rule import Finding, FixAvailability, rule

TYPE_CHECKING = False
if TYPE_CHECKING:  # the reader (and the fixes' edits) only when a torch.save file is checked
    from sdlint.checkpoint import Checkpoint
    from sdlint.edits import Edit
    from sdlint.formats.pickle import PickleCheckpoint, PickleGlobal

# Globals whose only use in a pickle is to run code, read or write files, or reach the network.
_RUNS_CODE_MODULES = {
    "os",
    "posix",
    "nt",
    "subprocess",
    "sys",
    "runpy",
    "pty",
    "shutil",
    "socket",
    "importlib",
    "pickle",
    "_pickle",
    "marshal",
    "types",
    "code",
    "codeop",
    "ctypes",
    "webbrowser",
    "multiprocessing",
    "asyncio",
    "pdb",
    "timeit",
    "urllib",
    "http",
    "requests",
    "torch.hub",
    "operator",
    "functools",
}
_RUNS_CODE_BUILTINS = {
    "exec",
    "eval",
    "compile",
    "open",
    "__import__",
    "getattr",
    "setattr",
    "delattr",
    "globals",
    "locals",
    "vars",
    "breakpoint",
    "input",
    "apply",
}


def _pickles(ctx: CheckContext) -> Iterator[PickleCheckpoint]:
    from sdlint.formats.pickle import PickleCheckpoint, UnreadablePickle

    for result in ctx.checkpoint.files:
        if isinstance(result, PickleCheckpoint):
            yield result
        elif isinstance(result, UnreadablePickle) and result.description is not None:
            yield result.description


def _problem_findings(ctx: CheckContext, *kinds: str) -> Iterator[Finding]:
    """One finding per reader problem of these kinds, in every pickle of the checkpoint: the
    reader words the problem, the rule only chooses which kinds it reports."""
    for pickle in _pickles(ctx):
        for problem in pickle.problems:
            if problem.kind in kinds:
                yield Finding(problem.message, pickle.path.display, tensor=problem.tensor)


def runs_code(found: PickleGlobal) -> bool:
    """Whether the global is one whose use in a pickle can only be an attack."""
    if found.module == "builtins":
        return found.name in _RUNS_CODE_BUILTINS
    root = found.module.split(".", 1)[0]
    return found.module in _RUNS_CODE_MODULES or root in _RUNS_CODE_MODULES


def unsafe_findings(pickle: PickleCheckpoint) -> Iterator[Finding]:
    path = pickle.path.display
    seen: set[str] = set()
    for found in pickle.unsafe:
        if found.qualified in seen:
            continue
        seen.add(found.qualified)
        written = f"written `{found.written}`, " if found.written else ""
        verb = "calls" if found.called else "imports"
        where = f"{written}{found.opcode} at {found.where or f'byte {found.position:,}'}"
        if runs_code(found):
            what = "which can run arbitrary code"
        else:
            what = "which is not among the globals torch.save writes for tensors"
        yield Finding(
            f"pickle {verb} `{found.qualified}` ({where}), {what} when the file is loaded "
            "(torch.load with weights_only=False, or torch before 2.6)",
            path,
        )


@rule(
    "SD006",
    "unsafe-pickle",
    formats=(PICKLE,),
    summary="A pickle checkpoint imports or calls a global.",
)
def unsafe_pickle(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Walks the pickle of a torch.save checkpoint (`pytorch_model.bin`, `*.pt`, `*.pth`, `*.ckpt`,
    in torch's zip format or the legacy one) opcode by opcode, without running it, and names every
    global it imports or calls that is not among those torch.save writes for tensors and plain
    containers (`torch._utils._rebuild_tensor_v2`, storage classes, dtypes,
    `collections.OrderedDict`, ...: a subset of torch's own `weights_only` allow-list). Globals
    whose only use in a pickle is to run code (`builtins.exec`, `os.system`,
    `subprocess.Popen`, ...) are said to be so. The whole pickle is walked, so every such global
    is named, whether or not the file also holds tensors.

    ## Why is this bad?
    Unpickling imports and calls these globals: `torch.load(path, weights_only=False)`, any torch
    before 2.6, and many loaders built on them run the code of whoever wrote the file. A weights
    file has no reason to hold code. sdlint itself never imports or calls anything the pickle
    names.

    ## Example
    ```
    pytorch_model.bin:1:1: SD006 pickle calls `builtins.exec` (written `__builtin__.exec`, REDUCE
    at byte 2,345 of archive/data.pkl), which can run arbitrary code when the file is loaded
    (torch.load with weights_only=False, or torch before 2.6)
    ```

    ## Fix safety
    No automatic fix, and sdlint never converts such a file. Do not load it; get the weights from
    a trusted source, preferably as safetensors.
    """
    for pickle in _pickles(ctx):
        yield from unsafe_findings(pickle)


@rule(
    "SD007", "unreadable-pickle", formats=(PICKLE,), summary="A pickle checkpoint cannot be read."
)
def unreadable_pickle(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Checks that a torch.save checkpoint can be read: a zip archive whose central directory is
    intact, with `<folder>/data.pkl` under the folder of its first entry (as torch reads it), or the
    legacy stream of pickles starting with torch's magic number; and a pickle that is well-formed
    to its end, within the reader's bounds (100 MB of pickle, 10 million opcodes).

    ## Why is this bad?
    torch.load fails on such a file (`PytorchStreamReader failed reading zip archive`,
    `UnpicklingError`, `invalid load key`), typically after a truncated download or when a file of
    another format carries a torch name.

    ## Example
    ```
    pytorch_model.bin:1:1: SD007 not a readable zip archive (truncated download?): File is not a
    zip file
    ```

    ## Fix safety
    No automatic fix: re-download or re-export the file.
    """
    yield from _problem_findings(ctx, "unreadable")


@rule(
    "SD008",
    "invalid-pickle-storage",
    formats=(PICKLE,),
    summary="A pickle checkpoint's storages do not hold what its tensors need.",
)
def invalid_pickle_storage(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Measures, without reading them, the storages a torch.save checkpoint's tensors live in: each
    storage the pickle refers to has its record (the zip entry `<folder>/data/<key>`, or in the
    legacy format its place after the pickles), the record holds the bytes the pickle declares,
    and every tensor's last element (storage offset, shape and strides) lies inside its storage.

    ## Why is this bad?
    torch.load fails on a missing record, and a short one means a truncated or tampered file:
    the tensors read past their data or the load fails with a size mismatch.

    ## Example
    ```
    pytorch_model.bin:1:1: SD008 tensor `classifier.weight` (float32, shape [2, 768], offset 0)
    needs 6,144 bytes of storage `201`, which holds 4,096
    ```

    ## Fix safety
    No automatic fix: re-download or re-export the file.
    """
    yield from _problem_findings(ctx, "storage")


@rule(
    "SD009",
    "not-a-state-dict",
    formats=(PICKLE,),
    summary="A pickle checkpoint does not hold a state dict of plain tensors.",
    severity=Severity.WARNING,
)
def not_a_state_dict(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Looks for the state dict in a readable torch.save checkpoint: a dict of tensors at the top, or
    under `state_dict` (Lightning `.ckpt`), `model_state_dict`, `model` or `module` (DeepSpeed).
    Anything else (a list, a single tensor, a dict of other things) is reported as not a state
    dict rather than guessed at; so are tensors sdlint does not describe (quantized, sparse,
    nested, meta).

    ## Why is this bad?
    transformers and `model.load_state_dict` expect a flat mapping of names to tensors: the model
    checks cannot compare anything else with the model, and the file is probably not the weights
    the name suggests.

    ## Example
    ```
    model.pt:1:1: SD009 not a state dict: the pickle holds a list of 3 items
    ```

    ## Fix safety
    No automatic fix: save `model.state_dict()` instead of the object.
    """
    yield from _problem_findings(ctx, "not-state-dict", "unsupported-tensor")


@rule(
    "SD010",
    "pickle-checkpoint",
    formats=(PICKLE,),
    summary="A clean pickle checkpoint could be safetensors.",
    severity=Severity.INFO,
    fix=FixAvailability.SOMETIMES,
)
def pickle_checkpoint(ctx: CheckContext) -> Iterator[Finding]:
    """## What it does
    Notes a torch.save checkpoint (`pytorch_model.bin`, `*.pt`, `*.pth`, `*.ckpt`) that is a clean
    state dict: its pickle names nothing outside the allow-list (no SD006), it reads to its end
    (no SD007), its storages hold its tensors (no SD008), and it is a flat mapping of names to
    plain tensors (no SD009, no wrapper such as Lightning's `state_dict` beside other training
    state, no non-tensor entries). Such a file can become safetensors losing nothing. A sharded
    pickle checkpoint (`pytorch_model.bin.index.json` and its `pytorch_model-00001-of-00003.bin`,
    ...) is noted once, on its index, when every shard is such a file and holds exactly the
    tensors the index maps to it, and no shard-named file is left out of the index (else SD004
    says what is out of step). A checkpoint transformers
    does not load because `model.safetensors` (or its index) is beside it is not noted.

    ## Why is this bad?
    Loading a pickle runs a program: safe only with `torch.load(weights_only=True)`, the default
    since torch 2.6, and only as long as that allow-list holds. safetensors holds the same
    tensors as plain bytes behind a JSON header, loads without copying (memory-mapped), and is
    what transformers loads first and the Hugging Face Hub recommends.

    ## Example
    ```
    pytorch_model.bin:1:1: SD010 pickle checkpoint of 201 tensors could be safetensors
    (model.safetensors), which loads without running code
    ```

    ## Fix safety
    **Unsafe** (with `--fix --unsafe-fixes`): convert the file to safetensors and remove it. The
    new file is named as transformers and peft name it (`pytorch_model.bin` ->
    `model.safetensors`, `adapter_model.bin` -> `adapter_model.safetensors`, a variant's
    `pytorch_model.fp16.bin` -> `model.fp16.safetensors`); any other file keeps its stem
    (`model.pt` -> `model.safetensors`). It carries the metadata
    `{"format": "pt"}`, which transformers requires. The pickle is never unpickled: each tensor's
    bytes are streamed from its storage record, in row-major order, so a view (a transpose, a
    slice, an expanded dimension) gets its own bytes, and tensors sharing a storage (tied weights)
    each get a copy, since safetensors forbids shared tensors; transformers ties them again on
    load. The new file is written to a temporary file, fsynced, read back (header, names, dtypes,
    shapes, and every tensor's bytes hashed against what was read from the original) and only
    then given its name, never replacing an existing file. The original is then removed, since
    transformers would load `model.safetensors` first anyway and a pickle left beside it is the
    risk the conversion removes; with `--backup` it is kept as `<name>.bak`. The fix is unsafe
    because code that opens the pickle by its name (`torch.load("model.pt")`) no longer finds it.
    Not offered when the new file's name is taken, nor for a remote checkpoint.

    A sharded checkpoint is converted whole, in one fix: each shard as above, named as
    `save_pretrained` names safetensors shards (`pytorch_model-00001-of-00003.bin` ->
    `model-00001-of-00003.safetensors`), then the index, as `model.safetensors.index.json`
    mapping every tensor to its new shard (`total_size` counted from the new shards); a variant's
    likewise (`pytorch_model.fp16-00001-of-00003.bin` -> `model.fp16-00001-of-00003.safetensors`,
    `pytorch_model.bin.index.fp16.json` -> `model.safetensors.index.fp16.json`), so that
    `from_pretrained(variant="fp16")` loads the converted folder. The pickles
    and `pytorch_model.bin.index.json` are then removed (each kept as `<name>.bak` with
    `--backup`). Should any step fail, the files already converted are removed and the originals
    put back: the folder is left as it was. Not offered when any of the new names is taken.
    """
    checkpoint = ctx.checkpoint
    # pytorch_model.bin beside model.safetensors: what it would be converted to is loaded already.
    # Another pickle a loaded file shadows (`model.pth`, `ema.pt`) is still offered, or told that
    # its safetensors name is taken.
    if checkpoint.shadowed_by is not None and loaded_by_name(checkpoint.path.name):
        return
    if checkpoint.index is not None:
        yield from _sharded_conversion(checkpoint)
        return
    from sdlint.edits import ConvertToSafetensors
    from sdlint.formats.pickle import PickleCheckpoint, conversion_problem, safetensors_name

    for result in checkpoint.files:
        if not isinstance(result, PickleCheckpoint) or conversion_problem(result) is not None:
            continue
        local = result.path.local
        if local is None:  # a remote file is never converted (nor read as torch.save)
            continue
        target = safetensors_name(local)
        count = len(result.entries)
        tensors = f"{count} tensor{'s' if count != 1 else ''}"
        path = result.path.display
        if os.path.lexists(target):
            yield Finding(
                f"pickle checkpoint of {tensors} could be safetensors, but {target.name} already "
                "exists beside it: remove this file if it holds the same weights",
                path,
            )
            continue
        fix = Fix(
            Applicability.UNSAFE,
            f"Convert to {target.name} ({tensors}, copied and verified) and remove "
            f"{result.path.name} (kept as {result.path.name}.bak with --backup)",
            (ConvertToSafetensors(local, target),),
        )
        yield Finding(
            f"pickle checkpoint of {tensors} could be safetensors ({target.name}), which loads "
            "without running code",
            path,
            fix=fix,
        )


def _sharded_conversion(checkpoint: Checkpoint) -> Iterator[Finding]:
    """SD010 for a sharded torch.save checkpoint: every shard clean and exactly what its index
    maps to it (else SD004-SD009 say what is wrong, and nothing is noted)."""
    from sdlint.edits import ConvertIndex, ConvertToSafetensors
    from sdlint.formats.pickle import (
        PickleCheckpoint,
        conversion_problem,
        safetensors_index_name,
        safetensors_name,
    )

    index = checkpoint.index
    if (
        index is None
        or index.problem is not None
        or checkpoint.missing_shards
        or checkpoint.refused_shards
        or checkpoint.deleted_shards
        or checkpoint.unreferenced_shards  # left behind, they would be loaded as pickles
    ):
        return
    index_path = index.path.local
    if index_path is None:  # a remote checkpoint is never converted
        return
    names = index.shard_names
    shards: list[Path] = []
    count = 0
    for name, result in zip(names, checkpoint.files, strict=True):
        if not isinstance(result, PickleCheckpoint) or conversion_problem(result) is not None:
            return
        held = {t.name for t in result.entries}
        if held != {k for k, shard in index.weight_map.items() if shard == name}:
            return
        if result.path.local is None:
            return
        shards.append(result.path.local)
        count += len(result.entries)
    if not shards or count != len(index.weight_map):
        return
    new_names = [
        name[: len(name) - len(shard.name)] + safetensors_name(shard).name
        for name, shard in zip(names, shards, strict=True)
    ]
    new_index = safetensors_index_name(index_path)
    if len(set(new_names)) != len(new_names):
        return
    tensors = f"{count} tensor{'s' if count != 1 else ''} in {len(shards)} shards"
    path = checkpoint.path.display
    taken = next(
        (
            target
            for target in (new_index, *(index_path.parent / n for n in new_names))
            if os.path.lexists(target)
        ),
        None,
    )
    if taken is not None:
        yield Finding(
            f"sharded pickle checkpoint of {tensors} could be safetensors, but {taken.name} "
            "already exists beside it: remove the pickles if it holds the same weights",
            path,
        )
        return
    edits: list[Edit] = [
        ConvertToSafetensors(shard, shard.parent / Path(new).name)
        for shard, new in zip(shards, new_names, strict=True)
    ]
    edits.append(ConvertIndex(index_path, new_index, tuple(zip(names, new_names, strict=True))))
    fix = Fix(
        Applicability.UNSAFE,
        f"Convert the shards to {new_names[0]}, ... and the index to {new_index.name} "
        f"({tensors}, copied and verified), and remove the pickles and {index.path.name} (each "
        "kept as <name>.bak with --backup)",
        tuple(edits),
    )
    yield Finding(
        f"sharded pickle checkpoint of {tensors} could be safetensors ({new_index.name} and its "
        "shards), which loads without running code",
        path,
        fix=fix,
    )
