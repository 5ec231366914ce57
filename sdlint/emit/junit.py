"""`--output-format junit`: JUnit XML, for CI systems that show test reports (GitLab
`artifacts: reports: junit`, Jenkins, Azure Pipelines).

One `<testsuite>` per file with findings, one failing `<testcase>` per finding
(`<failure message=MESSAGE type=CODE>`). The emitter sees findings, not the list of files checked,
so files without findings do not appear; a clean run is one passing testcase, so that the report
is never empty (some CI systems treat an empty report as a failure).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import TextIO

from sdlint.diagnostic import Diagnostic
from sdlint.emit import EmitContext

# Characters XML 1.0 cannot carry even escaped. A tensor name in a header is arbitrary JSON, so a
# message may hold one; ElementTree would write it as is and the report would not parse.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(value: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", value)


def _testcase_name(d: Diagnostic) -> str:
    return f"{d.code} {d.tensor}" if d.tensor is not None else d.code


def to_junit(diagnostics: Sequence[Diagnostic]) -> ET.Element:
    failures = str(len(diagnostics))
    root = ET.Element("testsuites", name="sdlint", tests=failures, failures=failures, errors="0")
    if not diagnostics:
        root.set("tests", "1")
        suite = ET.SubElement(root, "testsuite", name="sdlint", tests="1", failures="0", errors="0")
        ET.SubElement(suite, "testcase", name="All checks passed", classname="sdlint")
        return root
    by_path: dict[str, list[Diagnostic]] = {}
    for d in diagnostics:
        by_path.setdefault(d.path, []).append(d)
    for path, found in by_path.items():
        count = str(len(found))
        suite = ET.SubElement(
            root, "testsuite", name=_xml_text(path), tests=count, failures=count, errors="0"
        )
        for d in found:
            where = f"{d.path}:{d.location.line}:{d.location.column}"
            case = ET.SubElement(
                suite,
                "testcase",
                name=_xml_text(_testcase_name(d)),
                classname=_xml_text(d.path),
                file=_xml_text(d.path),
                line=str(d.location.line),
                column=str(d.location.column),
            )
            failure = ET.SubElement(case, "failure", message=_xml_text(d.message), type=d.code)
            failure.text = _xml_text(f"{where}: {d.code} {d.message}")
    return root


def emit(diagnostics: Sequence[Diagnostic], context: EmitContext, stream: TextIO) -> None:
    tree = ET.ElementTree(to_junit(diagnostics))
    ET.indent(tree)
    stream.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    tree.write(stream, encoding="unicode")
    stream.write("\n")
