"""SARIF 2.1.0, as GitHub code scanning and other PR tools read it."""

from __future__ import annotations

import json
from typing import Any

from modelops import __version__
from modelops.report.items import Report

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"error": "error", "failed": "error", "warning": "warning", "info": "note", "skipped": "none",
          "passed": "none"}


def sarif_document(report: Report) -> dict[str, Any]:
    rule_ids = list(dict.fromkeys([*report.rules, *(i.id for i in report.items)]))
    index = {rule_id: n for n, rule_id in enumerate(rule_ids)}
    rules = [
        {"id": rule_id, "name": rule_id, "shortDescription": {"text": report.rules.get(rule_id, rule_id)}}
        for rule_id in rule_ids
    ]
    results = []
    for item in report.items:
        result: dict[str, Any] = {
            "ruleId": item.id,
            "ruleIndex": index[item.id],
            "level": _LEVEL.get(item.status, "warning"),
            "message": {"text": item.message + (f" (hint: {item.hint})" if item.hint else "")},
        }
        if item.file:
            physical: dict[str, Any] = {"artifactLocation": {"uri": item.file, "uriBaseId": "%SRCROOT%"}}
            if item.line:
                physical["region"] = {"startLine": item.line, "startColumn": item.column or 1}
            location: dict[str, Any] = {"physicalLocation": physical}
            if item.path and item.path != "$":
                location["logicalLocations"] = [{"fullyQualifiedName": item.path, "kind": "member"}]
            result["locations"] = [location]
        if item.subject:
            result["properties"] = {"model": item.subject}
        results.append(result)
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": report.tool, "version": __version__, "informationUri":
                                "https://github.com/modelops/modelops", "rules": rules}},
            "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "the repository root"}}},
            "results": results,
        }],
    }


def render_sarif(report: Report) -> str:
    return json.dumps(sarif_document(report), indent=2) + "\n"
