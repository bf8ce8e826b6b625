#!/usr/bin/env python3
"""Checks deploy/prometheus/alerts.yaml, the one source of the order service's alerts.

* The PrometheusRule itself: apiVersion, kind, metadata, `spec.groups`; every alert has a
  `severity` label and `summary`, `description` and `runbook` annotations, and each runbook
  names a section that exists in docs/operations.md.
* `promtool check rules` on its spec, extracted to a plain rules file (alerts.rules.yaml).
* `promtool test rules` on alerts.test.yaml beside it, and that every alert has at least one
  case that fires it and one that shows it silent.

Needs promtool (Debian's `prometheus` package) and PyYAML; scripts/test installs both.
Usage: check.py   (exit status 1 and one line per problem on failure)
"""

import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

HERE = pathlib.Path(__file__).resolve().parent
RUNBOOK = HERE.parent.parent / "docs" / "operations.md"
SEVERITIES = {"critical", "warning", "info"}

problems = []


def problem(what):
    problems.append(what)


def github_anchors(markdown):
    """The anchors GitHub gives the headings of a Markdown file."""
    anchors = set()
    for line in markdown.splitlines():
        match = re.match(r"#{1,6}\s+(.*)", line)
        if match:
            text = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def sections(markdown):
    """Each heading's anchor and the text below it, up to the next heading."""
    found, anchor = {}, None
    for line in markdown.splitlines():
        if re.match(r"#{1,6}\s", line):
            anchor = next(iter(github_anchors(line)))
            found[anchor] = ""
        elif anchor:
            found[anchor] += line + "\n"
    return found


def check_runbook(markdown, alerts):
    """Every alert has its section saying what it means, where to look and what to do, and
    every link inside the runbook lands on a section."""
    found = sections(markdown)
    for name in alerts:
        text = found.get(name.lower(), "")
        for part in ("**Means.**", "**Look.**", "**Do.**"):
            if part not in text:
                problem(f"docs/operations.md: section {name} lacks {part}")
    for anchor in re.findall(r"\]\(#([^)]+)\)", markdown):
        if anchor not in found:
            problem(f"docs/operations.md: link to #{anchor}, which is no section")


def check_rule_object(doc):
    if doc.get("apiVersion") != "monitoring.coreos.com/v1":
        problem(f"apiVersion {doc.get('apiVersion')!r}, expected monitoring.coreos.com/v1")
    if doc.get("kind") != "PrometheusRule":
        problem(f"kind {doc.get('kind')!r}, expected PrometheusRule")
    meta = doc.get("metadata") or {}
    for key in ("name", "namespace"):
        if not meta.get(key):
            problem(f"metadata.{key} is missing")
    spec = doc.get("spec") or {}
    if set(spec) != {"groups"} or not spec.get("groups"):
        problem("spec must hold groups, and only groups")
    anchors = github_anchors(RUNBOOK.read_text()) if RUNBOOK.is_file() else set()
    if not anchors:
        problem(f"{RUNBOOK} is missing or has no sections")
    alerts = []
    for group in spec.get("groups") or []:
        for rule in group.get("rules") or []:
            name = rule.get("alert")
            if not name:
                continue
            alerts.append(name)
            if (rule.get("labels") or {}).get("severity") not in SEVERITIES:
                problem(f"{name}: severity label must be one of {sorted(SEVERITIES)}")
            notes = rule.get("annotations") or {}
            for key in ("summary", "description", "runbook"):
                if not notes.get(key):
                    problem(f"{name}: annotation {key} is missing")
            runbook = notes.get("runbook", "")
            page, _, anchor = runbook.partition("#")
            if page != "docs/operations.md" or anchor not in anchors:
                problem(f"{name}: runbook {runbook!r} is no section of docs/operations.md")
    if len(set(alerts)) != len(alerts):
        problem("alert names are not unique")
    if RUNBOOK.is_file():
        check_runbook(RUNBOOK.read_text(), alerts)
    return spec, alerts


def check_test_coverage(tests, alerts):
    fired, silent = set(), set()
    for test in tests.get("tests") or []:
        for case in test.get("alert_rule_test") or []:
            (fired if case.get("exp_alerts") else silent).add(case.get("alertname"))
    for name in alerts:
        if name not in fired:
            problem(f"{name}: no unit test fires it")
        if name not in silent:
            problem(f"{name}: no unit test shows it silent")
    for name in (fired | silent) - set(alerts):
        problem(f"alerts.test.yaml tests {name!r}, which alerts.yaml does not define")


def promtool(*args, cwd):
    promtool_bin = shutil.which("promtool")
    if not promtool_bin:
        problem("promtool is missing (Debian: apt-get install prometheus; scripts/test installs it)")
        return
    done = subprocess.run([promtool_bin, *args], cwd=cwd, capture_output=True, text=True)
    print(done.stdout + done.stderr, end="")
    if done.returncode != 0:
        problem(f"promtool {' '.join(args)} failed")


def main():
    docs = [d for d in yaml.safe_load_all((HERE / "alerts.yaml").read_text()) if d]
    if len(docs) != 1:
        problem(f"alerts.yaml holds {len(docs)} documents, expected one PrometheusRule")
        return
    spec, alerts = check_rule_object(docs[0])
    tests = yaml.safe_load((HERE / "alerts.test.yaml").read_text())
    if tests.get("rule_files") != ["alerts.rules.yaml"]:
        problem("alerts.test.yaml must read rule_files: [alerts.rules.yaml]")
    check_test_coverage(tests, alerts)
    with tempfile.TemporaryDirectory() as tmp:
        (pathlib.Path(tmp) / "alerts.rules.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        shutil.copy(HERE / "alerts.test.yaml", tmp)
        promtool("check", "rules", "alerts.rules.yaml", cwd=tmp)
        promtool("test", "rules", "alerts.test.yaml", cwd=tmp)
    if not problems:
        print(f"alerts.yaml: {len(alerts)} alerts valid, each fired and silent in its unit tests")


if __name__ == "__main__":
    main()
    for p in problems:
        print(p, file=sys.stderr)
    sys.exit(1 if problems else 0)
