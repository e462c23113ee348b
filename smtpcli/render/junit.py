"""Report(s) -> JUnit XML, one test case per finding, for CI dashboards."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from smtpcli.results import Report, Status


def junit_tree(reports: list[Report], *, strict: bool = False) -> ET.ElementTree:
    """One <testsuite> per report; fail -> <failure>, error -> <error>, warn fails with strict."""
    suites = ET.Element("testsuites", name="smtpcli")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for report in reports:
        suite = ET.SubElement(suites, "testsuite", name=f"{report.command} {report.target or ''}".strip())
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for finding in report.findings:
            case = ET.SubElement(
                suite, "testcase", classname=f"smtpcli.{report.command}", name=finding.id
            )
            if finding.subject:
                case.set("name", f"{finding.id} [{finding.subject}]")
            counts["tests"] += 1
            message = finding.summary
            body = "\n".join(x for x in (finding.detail, finding.fix, finding.reference) if x)
            if finding.status is Status.ERROR:
                counts["errors"] += 1
                ET.SubElement(case, "error", message=message, type=finding.id).text = body
            elif finding.status is Status.FAIL or (strict and finding.status is Status.WARN):
                counts["failures"] += 1
                ET.SubElement(case, "failure", message=message, type=finding.id).text = body
            elif finding.status in (Status.WARN, Status.INFO):
                ET.SubElement(case, "system-out").text = f"{finding.status.value}: {message}"
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    for key, value in totals.items():
        suites.set(key, str(value))
    return ET.ElementTree(suites)


def write_junit(path: str | Path, reports: list[Report], *, strict: bool = False) -> None:
    tree = junit_tree(reports, strict=strict)
    ET.indent(tree)
    tree.write(str(path), encoding="utf-8", xml_declaration=True)
