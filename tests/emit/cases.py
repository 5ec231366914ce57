"""One fixed list of diagnostics every emitter is snapshot-tested on: each severity, with and
without tensor, shapes and fix, a path with a comma and a colon, a message with a newline and `%`,
a real config.json location, and two findings that differ only in their line."""

from __future__ import annotations

from sdlint.diagnostic import Applicability, Diagnostic, Fix, Location, Severity

INDEX = "ckpt/model.safetensors.index.json"
ODD_PATH = "runs/a,b:c/model.safetensors"

DIAGNOSTICS: tuple[Diagnostic, ...] = tuple(
    sorted(
        [
            Diagnostic(
                code="SD003",
                severity=Severity.ERROR,
                message="data section ends at byte 40 but the file holds only 34 bytes of data",
                path="model.safetensors",
            ),
            Diagnostic(
                code="SD101",
                severity=Severity.ERROR,
                message="`classifier.weight` has shape [2, 768], the config builds [5, 768]",
                path="ckpt/model.safetensors",
                tensor="classifier.weight",
                expected=(5, 768),
                actual=(2, 768),
            ),
            Diagnostic(
                code="SD106",
                severity=Severity.ERROR,
                message="every key carries the prefix `module.`",
                path="ckpt/model.safetensors",
                fix=Fix(Applicability.SAFE, "Strip the prefix `module.` from 39 keys"),
            ),
            Diagnostic(
                code="SD104",
                severity=Severity.WARNING,
                message="`extra.bias` is unused:\n100% of its bytes are ignored",
                path="ckpt/model.safetensors",
                tensor="extra.bias",
                actual=(4,),
                fix=Fix(Applicability.UNSAFE, "Drop the tensor `extra.bias`"),
            ),
            Diagnostic(
                code="SD001",
                severity=Severity.WARNING,
                message="header starts with whitespace",
                path=ODD_PATH,
            ),
            Diagnostic(
                code="SD105",
                severity=Severity.INFO,
                message="tensors are stored in F32, the config's dtype is bfloat16",
                path="ckpt/config.json",
                location=Location(3, 12),
            ),
            Diagnostic(
                code="SD004",
                severity=Severity.ERROR,
                message="index maps `a.weight` to a missing shard",
                path=INDEX,
                tensor="a.weight",
                location=Location(4, 5),
            ),
            Diagnostic(
                code="SD004",
                severity=Severity.ERROR,
                message="index maps `a.weight` to a missing shard",
                path=INDEX,
                tensor="a.weight",
                location=Location(9, 5),
            ),
        ],
        key=Diagnostic.sort_key,
    )
)
