"""Commands that need neither GitHub nor InfluxDB: classify local logs, list and check
rules. They import neither client, so they start fast."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from rich.console import Console

from multivac.errors import os_reason


def not_a_file(path: Path, console: Console) -> bool:
    """Say so when a log named on the command line is missing or a directory; the other
    files are still read, and the command exits 2."""
    if path.exists() and not path.is_dir():
        return False  # a pipe such as <(zcat job.log.gz) is read too
    why = "is a directory" if path.is_dir() else "no such file"
    console.print(f"error: {path}: {why}.", markup=False)
    return True


def classify_files(paths: list[Path], rules: Sequence[str], as_json: bool, console: Console) -> int:
    from multivac.classify import classify_file, load_catalog

    catalog = load_catalog(rules)
    results = []
    code = 0
    for path in paths:
        if not_a_file(path, console):
            code = 2
            continue
        try:
            found = classify_file(path, catalog)
        except OSError as exc:
            console.print(f"error: {path}: {os_reason(exc)}.", markup=False)
            code = 2
            continue
        results.append(
            {
                "path": str(path),
                "type": found.type if found else "unknown_failure",
                "rule": found.rule if found else None,
                "line_number": found.line_number if found else None,
                "evidence": found.evidence if found else None,
                "signature": found.signature if found else None,
                "also": found.also.split(",") if found and found.also else [],
            }
        )
    if as_json:
        sys.stdout.write(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    else:
        for item in results:
            sys.stdout.write(f"{item['path']}: {item['type']}\n")
            if item["evidence"]:
                where = f"line {item['line_number']}: " if item["line_number"] else ""
                sys.stdout.write(f"    {where}{item['evidence']}\n")
    return code


def list_rules(sources: Sequence[str]) -> None:
    from multivac.classify import load_catalog

    catalog = load_catalog(sources)
    for rule in catalog.rules:
        sys.stdout.write(f"{rule.priority:>4}  {rule.type:<18} {rule.id}\n")


def check_rules(files: list[Path], console: Console) -> int:
    """Each file's failure rules and test-result parsers, against their examples."""
    from multivac.classify import check_rules_file, shipped_packs
    from multivac.testresults import check_tests_file

    code = 0
    for path in files:
        problems = check_rules_file(str(path))
        if path.is_file() or str(path) in shipped_packs():  # a missing file: one problem
            problems += check_tests_file(str(path))
        if problems:
            code = 2
            for problem in problems:
                console.print(f"error: {problem}", markup=False)
        else:
            sys.stdout.write(f"{path}: ok\n")
    return code


def suggest_rules(state: Path, repos: Sequence[str], since: datetime, top: int) -> int:
    """Draft rules for the largest clusters of unknown failures in the store, as YAML on
    stdout; writes nothing. Returns how many clusters were found."""
    from multivac.model import UNKNOWN_FAILURE
    from multivac.queries import outcomes
    from multivac.store import Store
    from multivac.suggest import clusters, draft_rules

    with Store.open(state) as store:
        chosen = list(repos) or store.repositories()
        excerpts = [
            item.stored.classification.excerpt
            for item in outcomes(store, chosen, since, None)
            if item.measurement == UNKNOWN_FAILURE and item.stored.classification is not None
        ]
    found = clusters(excerpts)[:top]
    if found:
        sys.stdout.write(draft_rules(found))
    return len(found)


def show_log(state: Path, job_id: int) -> None:
    """Write an archived log to stdout as it came from GitHub."""
    from multivac.archive import LogArchive
    from multivac.errors import MultivacError

    archive = LogArchive(state / "logs", 0)
    log = archive.read(job_id)
    if log is None:
        raise MultivacError(
            f"job {job_id} has no archived log in {state / 'logs'} (gather keeps failed jobs' "
            "logs unless --log-archive-mb 0; the oldest go first when the archive is full)."
        )
    out = sys.stdout.buffer
    for chunk in log:
        out.write(chunk)
    out.flush()
