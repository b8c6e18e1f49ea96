"""How often classification is right on failures it was not written against.

The held-out failures are real outputs of tools run on this machine
(`bench/eval/outputs/<type>__<name>.txt`) and documented formats of tools that cannot run
here (`bench/eval/cases.yaml`). Each is placed in generated job logs the way CI shows it:

- a raw GitHub job log: setup and checkout steps, passing steps that print alarming
  lines (`Error: usage`, header probes that fail, warnings), the failing step with the
  failure followed by the usual summaries (`make: *** Error 2`, the exit code), then
  steps that run because the job failed (a notification that fails too, an upload);
  half of them with the job's steps known (as `gather` passes them), half without;
- the same job in the `gh run view --log` layout (for the third to fifth sets also as gh
  shows a run whose log archive has no per-step files: every line under `UNKNOWN STEP`);
- a Jenkins-style console log (timestamps, a long stack trace after the failure); for the
  third holdout set also a Maven freestyle job's console without timestamps and a Pipeline
  console with the Timestamper plugin's `HH:MM:SS` prefix.

It prints the share of failed jobs given the right type and the share whose evidence is
on one of the failure's own lines (not on filler, a generic summary, a setup step or a
step that ran after the failure). Usage: python bench/bench_accuracy.py [-v]
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from multivac.classify import (  # noqa: E402
    MAX_EVIDENCE,
    Catalog,
    available_engines,
    classify_log,
    load_catalog,
)
from multivac.logstream import clean_text  # noqa: E402

EVAL = ROOT / "bench" / "eval"
LATER_SETS = (
    "holdout3",
    "holdout4",
    "holdout5",
    "holdout6",
    "holdout7",
    "holdout8",
    "holdout9",
)  # this round
SETS = ("development", "holdout", "holdout2", *LATER_SETS)
TS = "2026-10-01T12:{:02d}:{:02d}.{:07d}Z "


@dataclass(frozen=True)
class Case:
    name: str
    type: str
    lines: tuple[str, ...]
    layout: str = "github"
    action: str = ""  # the action whose step failed (its own `##[error]` ends the step)


def load_cases(which: str = "development") -> list[Case]:
    """The development set (real outputs and cases.yaml, used to find general gaps in the
    catalog), the holdout set (holdout.yaml, never used to change a rule) or the second
    holdout set (outputs2/ and holdout2.yaml: written before the catalog round of issue 9
    changed any rule, and never used to change one) or the third (outputs3/: real outputs
    of tools and messages the catalog's examples do not contain, committed before the rule
    changes they led to) or the fourth (outputs4/: more of them, made after those rule
    changes to measure them, committed before the changes it led to) or the fifth (holdout5.yaml:
    Jenkins consoles quoted in public issues) or the sixth (outputs6/: a last round of real
    outputs, committed before the changes it led to)."""
    cases = []
    if which in LATER_SETS:
        number = which[-1]
        for path in sorted((EVAL / f"outputs{number}").glob("*.txt")):
            kind, _, name = path.stem.partition("__")
            text = path.read_text(encoding="utf-8")
            cases.append(Case(f"out{number}:{name}", kind, tuple(text.splitlines())))
        quoted = EVAL / f"{which}.yaml"
        if quoted.exists():
            for index, entry in enumerate(yaml.safe_load(quoted.read_text(encoding="utf-8")), 1):
                lines = tuple(entry["lines"])
                layout = entry.get("layout", "github")
                name = f"{which}:{index}:{entry['type']}"
                cases.append(Case(name, entry["type"], lines, layout, entry.get("action", "")))
        return cases
    if which == "holdout2":
        for path in sorted((EVAL / "outputs2").glob("*.txt")):
            kind, _, name = path.stem.partition("__")
            text = path.read_text(encoding="utf-8")
            cases.append(Case(f"out2:{name}", kind, tuple(text.splitlines())))
        data = yaml.safe_load((EVAL / "holdout2.yaml").read_text(encoding="utf-8"))
        for index, entry in enumerate(data, 1):
            cases.append(
                Case(
                    f"holdout2:{index}:{entry['type']}",
                    entry["type"],
                    tuple(entry["lines"]),
                    entry.get("layout", "github"),
                )
            )
        return cases
    if which == "holdout":
        data = yaml.safe_load((EVAL / "holdout.yaml").read_text(encoding="utf-8"))
        return [
            Case(
                f"holdout:{i}:{e['type']}", e["type"], tuple(e["lines"]), e.get("layout", "github")
            )
            for i, e in enumerate(data, 1)
        ]
    for path in sorted((EVAL / "outputs").glob("*.txt")):
        kind, _, name = path.stem.partition("__")
        text = path.read_text(encoding="utf-8")
        cases.append(Case(f"out:{name}", kind, tuple(text.splitlines())))
    data = yaml.safe_load((EVAL / "cases.yaml").read_text(encoding="utf-8"))
    for index, entry in enumerate(data, 1):
        cases.append(
            Case(
                f"doc:{index}:{entry['type']}",
                entry["type"],
                tuple(entry["lines"]),
                entry.get("layout", "github"),
            )
        )
    return cases


SUMMARIES = [
    ["make: *** [Makefile:{n}: check] Error 2"],
    ["make[1]: *** [Makefile:{n}: all] Error 2", "make: *** [Makefile:9: build] Error 2"],
    ["npm ERR! Test failed.  See above for more details."],
    ["Error: Process completed with exit code {n}."],  # echoed by a wrapper script
    [],
]
NOISE_STEPS = [
    (
        "./configure --with-blosc",
        [
            "checking for blosc.h... no",
            "conftest.c:1:10: fatal error: 'blosc.h' file not found",
            "configure: WARNING: blosc not found, building without it",
        ],
    ),
    ("./tool --help", ["Error: usage: tool [--fast] FILE", "  --fast   skip checks"]),
    (
        "pip install -r requirements.txt",
        [
            "Collecting requests (from -r requirements.txt (line 1))",
            "Successfully installed requests-2.32.3 urllib3-2.2.3",
        ],
    ),
    (
        "cmake --build build",
        [
            "[ 50%] Building C object CMakeFiles/app.dir/util.c.o",
            "/home/runner/work/p/p/util.c:12:7: warning: unused variable 'tmp' [-Wunused-variable]",
            "[100%] Built target app",
        ],
    ),
]
AFTER_STEPS = [
    (
        "curl -fsS -X POST https://chat.example.com/hooks/ci -d @msg.json",
        ["curl: (22) The requested URL returned error: 404"],
        22,
    ),
    (
        "actions/upload-artifact@v4",
        [
            "##[warning]No files were found with the provided path: logs/. No artifacts will be "
            "uploaded."
        ],
        None,
    ),
    ("./scripts/notify.sh", ["Sending notification", "Error: Bad response: 502"], 1),
]


class Job:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.rows: list[tuple[str, str]] = []  # (step name, text)
        self.clock = 0

    def stamp(self) -> str:
        self.clock += self.rng.randint(1, 900_000)
        seconds, fraction = divmod(self.clock, 10_000_000)
        return TS.format(seconds // 60 % 60, seconds % 60, fraction)

    def add(self, step: str, text: str) -> None:
        self.rows.append((step, text))


def github_job(case: Case, rng: random.Random) -> tuple[Job, list[str], int]:
    """The job's rows, its step names and the number of the failed step."""
    job = Job(rng)
    steps = ["Set up job"]
    job.add("Set up job", "Current runner version: '2.321.0'")
    job.add("Set up job", "##[group]Operating System")
    job.add("Set up job", "Ubuntu 24.04.1 LTS")
    job.add("Set up job", "##[endgroup]")
    plan = [("actions/checkout@v4", ["Syncing repository: acme/app", "Fetching the repository"])]
    plan += rng.sample(NOISE_STEPS, rng.randint(1, 3))
    for command, lines in plan:
        name = f"Run {command}" if rng.random() < 0.5 else command.split()[0].strip("./")
        steps.append(name)
        job.add(name, f"##[group]Run {command}")
        job.add(name, "##[endgroup]")
        for line in lines:
            job.add(name, line)
    failing = rng.choice(["Test", "Build", "Run make check", "Check"])
    steps.append(failing)
    failed_number = len(steps)
    if case.action:  # a step that runs an action: `with:` inputs, no shell, no exit code
        job.add(failing, f"##[group]Run {case.action}")
        job.add(failing, "  with:")
        job.add(failing, "    token: ***")
        job.add(failing, "##[endgroup]")
    else:
        job.add(failing, "##[group]Run make check")
        job.add(failing, "make check")
        job.add(failing, "shell: /usr/bin/bash -e {0}")
        job.add(failing, "##[endgroup]")
    for index in range(rng.randint(0, 40)):
        if not case.action:
            job.add(failing, f"[{index:3d}/120] compiling module_{index}.c")
    for line in case.lines:
        job.add(failing, line)
    already_marked = any("##[error]" in line for line in case.lines)
    if not already_marked:
        for line in rng.choice(SUMMARIES):
            job.add(failing, line.format(n=rng.randint(1, 200)))
        job.add(failing, f"##[error]Process completed with exit code {rng.choice([1, 2])}.")
    for command, lines, code in rng.sample(AFTER_STEPS, rng.randint(0, 2)):
        name = f"Run {command}"
        steps.append(name)
        job.add(name, f"##[group]Run {command}")
        job.add(name, "##[endgroup]")
        for line in lines:
            job.add(name, line)
        if code is not None:
            job.add(name, f"##[error]Process completed with exit code {code}.")
    job.add("Post Run actions/checkout@v4", "Post job cleanup.")
    steps.append("Post Run actions/checkout@v4")
    job.add("Complete job", "Cleaning up orphan processes")
    steps.append("Complete job")
    return job, steps, failed_number


def render_raw(job: Job) -> bytes:
    return "".join(job.stamp() + text + "\n" for _step, text in job.rows).encode("utf-8")


def render_gh(job: Job, unknown: bool = False) -> bytes:
    """`gh run view --log`; with `unknown`, as gh shows a run whose log archive has no
    per-step files: every line under `UNKNOWN STEP`, the whole job's log."""
    return "".join(
        f"build (ubuntu-latest)\t{'UNKNOWN STEP' if unknown else step}\t{job.stamp()}{text}\n"
        for step, text in job.rows
    ).encode("utf-8")


def render_console(case: Case, rng: random.Random, styles: int = 1) -> bytes:
    """A Jenkins console log; `styles` above 1 lets the rng pick among the Pipeline log with
    ISO timestamps, a freestyle Maven job without timestamps and a Pipeline log with the
    Timestamper plugin's `HH:MM:SS` prefix."""
    style = rng.randrange(styles) if styles > 1 else 0
    if style == 1:
        return render_freestyle(case, rng)
    lines = [
        "Started by an SCM change",
        "Running on linux-agent-3 in /var/lib/jenkins/workspace/app",
        "[Pipeline] { (Build)",
        "[Pipeline] sh",
        "+ make ci",
        "Error: this retry message is ordinary text here",
    ]
    lines += [f"building target {i}" for i in range(rng.randint(5, 200))]
    lines += list(case.lines)
    if rng.random() < 0.6:
        lines.append("Traceback (most recent call last):")
        lines += [f'  File "/opt/ci/lib/step_{i}.py", line {i}, in run' for i in range(80)]
        lines.append("ci.StepFailed: make ci returned 2")
    lines += ["[Pipeline] }", "[Pipeline] // stage", "ERROR: script returned exit code 2"]
    lines.append("Finished: FAILURE")
    if style == 2:
        return "".join(
            f"12:{i // 60 % 60:02d}:{i % 60:02d}  {line}\n" for i, line in enumerate(lines)
        ).encode("utf-8")
    stamp = "[2026-10-01T12:00:{:02d}.{:03d}Z] "
    return "".join(
        stamp.format(i % 60, rng.randint(0, 999)) + line + "\n" for i, line in enumerate(lines)
    ).encode("utf-8")


def render_freestyle(case: Case, rng: random.Random) -> bytes:
    """A freestyle job's console as Jenkins shows it without the Timestamper plugin."""
    lines = [
        "Started by user Build Bot",
        "Running as SYSTEM",
        "Building on agent-linux-7 in workspace /home/jenkins/workspace/app-ci",
        "The recommended git tool is: NONE",
        "No credentials specified",
        " > git rev-parse --resolve-git-dir /home/jenkins/workspace/app-ci/.git # timeout=10",
        "Fetching changes from the remote Git repository",
        "Checking out Revision 3f2a9c1d7e0b4a5c6d8e9f0a1b2c3d4e5f6a7b8c (refs/remotes/origin/main)",
        'Commit message: "Retry the upload"',
        "[app-ci] $ /bin/sh -xe /tmp/jenkins1754238850717315932.sh",
        "+ ./ci/build.sh",
    ]
    lines += [
        f"[INFO] Downloaded module {i} (12 kB at 340 kB/s)" for i in range(rng.randint(0, 60))
    ]
    lines += list(case.lines)
    lines += [
        "Build step 'Execute shell' marked build as failure",
        "Archiving artifacts",
        "Recording test results",
        "[Checks API] No suitable checks publisher found.",
        "Sending e-mails to: dev@example.com",
        "Finished: FAILURE",
    ]
    return "".join(line + "\n" for line in lines).encode("utf-8")


def normal(text: str) -> str:
    """A line as evidence shows it: colours and control bytes removed, spaces folded."""
    return " ".join(clean_text(text).split())


def on_error_line(evidence: str, error_lines: set[str]) -> bool:
    """Whether the evidence is one of the failure's lines (evidence is cut at MAX_EVIDENCE
    characters, so a long line counts when it starts with the evidence)."""
    if evidence in error_lines:
        return True
    return len(evidence) >= MAX_EVIDENCE - 1 and any(
        line.startswith(evidence) for line in error_lines
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="list every miss")
    parser.add_argument("--engine", choices=available_engines(), default=None)
    parser.add_argument(
        "sets",
        nargs="*",
        help="which sets to evaluate: development, holdout, holdout2-9 (default: all)",
    )
    args = parser.parse_args()
    unknown = set(args.sets) - set(SETS)
    if unknown:
        parser.error(f"unknown set(s): {', '.join(sorted(unknown))}")
    catalog = load_catalog()
    for which in args.sets or SETS:
        evaluate(which, catalog, args.engine, args.verbose)


def evaluate(which: str, catalog: Catalog, engine: str | None, verbose: bool) -> None:
    rng = random.Random(20261129)
    cases = load_cases(which)
    total = right = on_error = 0
    by_layout: dict[str, list[int]] = {}
    for case in cases:
        # the failure's own output: not the filler, the summaries or the other steps
        error_lines = {normal(line) for line in case.lines if line.strip()}
        jobs: list[tuple[str, bytes, dict[str, object]]] = []
        styles = 3 if which in LATER_SETS else 1
        if case.layout == "plain":
            jobs.append(("console", render_console(case, rng, styles), {}))
        else:
            job, steps, failed = github_job(case, rng)
            known = {"steps": steps, "failed_step_number": failed}
            jobs.append(("github", render_raw(job), known if rng.random() < 0.5 else {}))
            jobs.append(("gh", render_gh(job), known if rng.random() < 0.5 else {}))
            if styles > 1:
                unknown = render_gh(job, unknown=True)
                jobs.append(("gh-unk", unknown, known if rng.random() < 0.5 else {}))
            jobs.append(("console", render_console(case, rng, styles), {}))
        for layout, data, known in jobs:
            found = classify_log([data], catalog, engine=engine, **known)  # type: ignore[arg-type]
            kind = found.type if found else "unknown_failure"
            good_type = kind == case.type
            good_line = found is not None and on_error_line(normal(found.evidence), error_lines)
            total += 1
            right += good_type
            on_error += good_line
            tally = by_layout.setdefault(layout, [0, 0, 0])
            tally[0] += 1
            tally[1] += good_type
            tally[2] += good_line
            if verbose and not (good_type and good_line):
                evidence = found.evidence[:110] if found else ""
                print(f"MISS {case.name} [{layout}] want {case.type}, got {kind}: {evidence}")
    print(f"{which} set: {total} failed jobs from {len(cases)} failures")
    for layout, (count, good, line) in sorted(by_layout.items()):
        print(
            f"  {layout:<8} {count:4d} jobs  type {good / count:6.1%}  evidence {line / count:6.1%}"
        )
    print(f"  right type:              {right / total:.1%}")
    print(f"  evidence on error line:  {on_error / total:.1%}")


if __name__ == "__main__":
    main()
