"""JUnit XML: one test case per subject (model) plus one for findings about no model (pipeline
files); failing items become ``<failure>``, the others go to ``<system-out>``."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from modelops.report.items import Item, Report

OTHER = "repository"


def _lines(items: tuple[Item, ...]) -> str:
    return "\n".join(
        f"{i.status.upper()} {i.id} {i.location}: {i.message}" + (f"\n  hint: {i.hint}" if i.hint else "")
        for i in items
    )


def render_junit(report: Report) -> str:
    subjects = list(report.subjects)
    for item in report.items:
        if item.subject is not None and item.subject not in subjects:
            subjects.append(item.subject)
    cases: list[tuple[str, tuple[Item, ...]]] = [(s, report.items_for(s)) for s in subjects]
    loose = report.items_for(None)
    if loose or not cases:
        cases.append((OTHER, loose))
    failures = sum(1 for _, items in cases if any(i.status in report.failing for i in items))
    suites = ET.Element("testsuites", name=report.title, tests=str(len(cases)), failures=str(failures), errors="0")
    suite = ET.SubElement(suites, "testsuite", name=report.title, tests=str(len(cases)), failures=str(failures),
                          errors="0", skipped="0")
    for name, items in cases:
        case = ET.SubElement(suite, "testcase", name=name, classname=report.tool)
        duration = sum(i.duration_seconds or 0.0 for i in items)
        if duration:
            case.set("time", f"{duration:.3f}")
        failing = tuple(i for i in items if i.status in report.failing)
        others = tuple(i for i in items if i.status not in report.failing)
        if failing:
            first = failing[0]
            said = f"{first.location}: {first.message}" if first.location else first.message
            failure = ET.SubElement(case, "failure", type=first.id,
                                    message=said if len(failing) == 1 else f"{len(failing)} problem(s); first: {said}")
            failure.text = _lines(failing)
        if others:
            ET.SubElement(case, "system-out").text = _lines(others)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
