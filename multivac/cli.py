"""The `multivac` command: parse options, resolve config, call one function, exit.

Domain errors become one line on stderr and an exit code here and nowhere else:
0 done, 1 an error (what was gathered before it is kept), 2 bad input or settings,
3 stopped early by GitHub's rate limit (partial data, run again later), 4 an alert rule
fired (`multivac check`), 130 interrupted.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

from multivac import __version__, config
from multivac.commands.tests import LastSeenFormat
from multivac.config import Environment, redact
from multivac.errors import MultivacError, os_reason
from multivac.minutes.capacity import CapacityBy, CapacityFormat
from multivac.minutes.usage import GroupBy, Period, UsageFormat
from multivac.retry import RetryPolicy
from multivac.sinks import Format

EXIT_INTERRUPTED = 130


class StatsBy(StrEnum):
    type = "type"
    signature = "signature"


def _readable_arguments() -> None:
    """typer labels an argument with its Python type (`OWNER/REPO <list[str]>`) and a
    required one in braces (`{LOG}...`); where a metavar says what to type, show just
    that: `[OWNER/REPO]...`, `LOG...`."""
    from typer.core import TyperArgument

    typed = TyperArgument.display_type_rich
    usage = TyperArgument._usage_display_name

    def repeat(self: TyperArgument, name: str) -> str:
        return name + ("..." if self.nargs != 1 else "")

    def display_type(self: Any, ctx: Any) -> str | None:
        return None if self.metavar else typed(self, ctx)

    def display_name(self: TyperArgument) -> str:
        return repeat(self, self.display_name_raw)

    def usage_name(self: TyperArgument) -> str:
        if self.metavar and self.required:
            return repeat(self, self.metavar)
        return usage(self)

    TyperArgument.display_type_rich = display_type  # type: ignore[method-assign]
    TyperArgument._rich_display_name = display_name  # type: ignore[method-assign]
    TyperArgument._usage_display_name = usage_name  # type: ignore[method-assign]


_readable_arguments()

app = typer.Typer(
    name="multivac",
    help="Turn GitHub Actions history into metrics: how long jobs waited for a runner, "
    "how long they ran, and why they failed.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
rules_app = typer.Typer(help="Show and check the failure rules.", no_args_is_help=True)
failures_app = typer.Typer(help="Failed jobs by failure type.", no_args_is_help=True)
config_app = typer.Typer(
    help="Show the effective configuration, or print an example config file.",
    no_args_is_help=True,
)
logs_app = typer.Typer(help="Failed jobs' logs kept in the local archive.", no_args_is_help=True)


class _TestsGroup(TyperGroup):
    """`multivac tests LOG...` parses logs (the `parse` command); `tests stats` and
    `tests last-seen` read the store. Anything but a command name starts `parse`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["parse", *args]
        return super().parse_args(ctx, args)


tests_app = typer.Typer(
    cls=_TestsGroup,
    help="Test results: `tests LOG...` reads local logs; `stats` and `last-seen` the store.",
    no_args_is_help=True,
    subcommand_metavar="LOG... | COMMAND [ARGS]...",
)
app.add_typer(logs_app, name="logs")
app.add_typer(tests_app, name="tests")
app.add_typer(config_app, name="config")
app.add_typer(rules_app, name="rules")
app.add_typer(failures_app, name="failures")

err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"error: {redact(message)}", markup=False)
    raise typer.Exit(code)


@contextmanager
def handled() -> Iterator[None]:
    """Domain errors to one line and an exit code; never a traceback."""
    try:
        yield
    except typer.Exit:
        raise
    except MultivacError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted; what was gathered so far is written and kept.", markup=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except OSError as exc:
        if exc.errno not in _OUTPUT_ERRNOS:
            raise
        raise typer.Exit(_output_failed(exc)) from None


# what printing to stdout meets: a full disk, a file too large, an I/O error, a closed pipe
_OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EPIPE})


def _output_failed(exc: OSError) -> int:
    """Say why the output could not be written (nothing when the reader left, as `| head`
    does); the exit code."""
    _quiet_stdout()
    if exc.errno != errno.EPIPE:
        err.print(f"error: cannot write the output: {os_reason(exc)}.", markup=False)
    return 1


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that the flush at exit does not fail a second time
    (with Python's own "Exception ignored" message)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (CliRunner's buffer)
        pass


def _version(value: bool) -> None:
    if value:
        typer.echo(f"multivac {__version__}")
        raise typer.Exit()


class _Global:
    """The global --config option, for every command's Environment."""

    config: Path | None = None


def _env() -> Environment:
    return Environment(config_path=_Global.config)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="FILE",
            help="The config file (default: $MULTIVAC_CONFIG, else multivac.toml in the "
            "current directory when there is one).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Configuration comes from flags, then the environment, then `.env` in the current
    directory (a variable already set is never overridden), then the config file."""
    _Global.config = config_file


# ---------------------------------------------------------------------------- options

RepoArg = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="OWNER/REPO",
        help="Repositories to gather (default: $GITHUB_REPOSITORY).",
        show_default=False,
    ),
]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since",
        metavar="DURATION|DATE",
        help="Start of the window: a duration ago (30d, 12h, 45m) or an ISO date/datetime "
        "(UTC when no zone is given). Default 1d, or all history with --latest.",
        show_default=False,
    ),
]
UntilOpt = Annotated[
    str | None,
    typer.Option(
        "--until",
        metavar="DURATION|DATE",
        help="End of the window, like --since. Default: now.",
        show_default=False,
    ),
]
RulesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--rules",
        metavar="FILE|PACK",
        help="Extra failure rules: a YAML file or a shipped pack name such as 'tarantool' "
        "(repeatable; also MULTIVAC_RULES, comma-separated). Later rules override earlier ones.",
        show_default=False,
    ),
]
StateDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        metavar="DIR",
        help="Where the local store and the InfluxDB spool live "
        "(default: $MULTIVAC_STATE_DIR, else ~/.local/state/multivac).",
        show_default=False,
    ),
]
MaxWaitOpt = Annotated[
    str | None,
    typer.Option(
        "--max-wait",
        metavar="DURATION",
        help="How long to wait out a GitHub outage (5xx, dropped connections) or a rate "
        "limit before stopping with what was gathered (a duration, default 15m; a rerun "
        "completes the window).",
        show_default=False,
    ),
]
PriceTableOpt = Annotated[
    Path | None,
    typer.Option(
        "--price-table",
        metavar="FILE",
        help="Per-minute prices (JSON or YAML) amending the packaged table, e.g. your larger "
        "runners' SKUs (also MULTIVAC_PRICE_TABLE; see docs/usage.md).",
        show_default=False,
    ),
]
ConcurrencyOpt = Annotated[
    int | None,
    typer.Option(
        "--concurrency",
        metavar="N",
        min=1,
        max=32,
        help="Runs fetched at once (1 to 32, default 4).",
        show_default=False,
    ),
]


# ---------------------------------------------------------------------------- gather


@app.command()
def gather(
    repos: RepoArg = None,
    org: Annotated[
        str | None,
        typer.Option(
            "--org",
            metavar="ORG",
            help="Gather every non-archived repository of this organisation (or user).",
            show_default=False,
        ),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            metavar="K/N",
            help="Gather only this share of the repositories (deterministic by name), "
            "so that N scheduled jobs share an organisation.",
            show_default=False,
        ),
    ] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    latest: Annotated[
        int | None,
        typer.Option(
            "--latest",
            metavar="N",
            min=1,
            help="Only the newest N completed runs.",
            show_default=False,
        ),
    ] = None,
    branch: Annotated[
        list[str] | None,
        typer.Option(
            "--branch",
            metavar="BRANCH",
            help="Only runs of this branch (repeatable).",
            show_default=False,
        ),
    ] = None,
    workflow: Annotated[
        list[str] | None,
        typer.Option(
            "--workflow",
            metavar="FILE|NAME",
            help="Only this workflow: a file name like ci.yml or a workflow name (repeatable).",
            show_default=False,
        ),
    ] = None,
    event: Annotated[
        str | None,
        typer.Option(
            "--event",
            metavar="EVENT",
            help="Only runs triggered by this event (push, pull_request, schedule, ...).",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        Format | None,
        typer.Option(
            "--format",
            "-f",
            case_sensitive=False,
            help="Output format (default csv). csv, json, jsonl and influx-csv need no "
            "database; influxdb writes to every InfluxDB target (INFLUX_URL/INFLUX_BUCKET, "
            "[[influx]] in the config file); line-protocol prints what influxdb would send.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write to this file instead of stdout.",
            show_default=False,
        ),
    ] = None,
    lean_tags: Annotated[
        bool,
        typer.Option(
            "--lean-tags",
            help="Store job_id, run_id, run_attempt and commit_sha as fields, not tags "
            "(one series per job is too many for large organisations).",
        ),
    ] = False,
    create_bucket: Annotated[
        bool,
        typer.Option(
            "--create-bucket", help="Create INFLUX_BUCKET when it does not exist (influxdb)."
        ),
    ] = False,
    rules: RulesOpt = None,
    no_logs: Annotated[
        bool,
        typer.Option(
            "--no-logs",
            help="Do not download logs: failed jobs are keyed unknown_failure (saves API budget).",
        ),
    ] = False,
    steps: Annotated[
        bool,
        typer.Option(
            "--steps",
            help="Also write a 'steps' point per completed step of each job (its duration; "
            "no extra request).",
        ),
    ] = False,
    runs: Annotated[
        bool,
        typer.Option(
            "--runs/--no-runs",
            help="Write a 'runs' point per run attempt (duration, queue, jobs, billable minutes).",
        ),
    ] = True,
    price_table: PriceTableOpt = None,
    concurrency: ConcurrencyOpt = None,
    max_wait: MaxWaitOpt = None,
    log_archive_mb: Annotated[
        int | None,
        typer.Option(
            "--log-archive-mb",
            metavar="MB",
            min=0,
            help="Keep failed jobs' logs, compressed, in the state directory up to this "
            "size (oldest removed first), so that reclassify and `logs show` can read them "
            "after GitHub deleted them. 0 turns it off. Default 2048 "
            "(or $MULTIVAC_LOG_ARCHIVE_MB).",
            show_default=False,
        ),
    ] = None,
    junit_artifacts: Annotated[
        str | None,
        typer.Option(
            "--junit-artifacts",
            metavar="GLOB",
            help="Also read JUnit XML reports from the runs' artifacts whose name matches "
            "(like 'junit-*'): the only test results of jobs that succeeded, whose logs "
            "are not downloaded. Each artifact is read once.",
            show_default=False,
        ),
    ] = None,
    test_summary: Annotated[
        bool,
        typer.Option(
            "--test-summary",
            help="Also write a test_summary point per job with test results: counts of "
            "passed, failed, skipped, hung and flaky tests.",
        ),
    ] = False,
    state_dir: StateDirOpt = None,
) -> None:
    """Gather every job attempt of every completed workflow run created in the window.

    Writes one record per job attempt (skipped jobs are left out): measurement = the job's
    outcome or failure type, tags, queued_s, in_progress_s and its billable minutes and
    cost; a 'runs' record per run attempt; with --steps, a 'steps' record per step; a
    'tests' record per failed, hung or flaky test of the failed jobs' logs (and JUnit
    artifacts). Data
    goes to stdout or --output, messages and the summary to stderr.
    """
    from multivac.commands.gather import gather as run_gather

    with handled():
        plan = config.plan_gather(
            _env(),
            repos=repos,
            org=org,
            shard=shard,
            since=since,
            until=until,
            latest=latest,
            branches=branch,
            workflows=workflow,
            event=event,
            output_format=fmt,
            output=output,
            lean=lean_tags,
            create_bucket=create_bucket,
            rules=rules,
            fetch_logs=not no_logs,
            concurrency=concurrency,
            max_wait=max_wait,
            state=state_dir,
            log_archive_mb=log_archive_mb,
            junit_artifacts=junit_artifacts,
            test_summary=test_summary,
            steps=steps,
            runs=runs,
            prices=price_table,
        )
        run_gather(plan, err)


@app.command()
def replay(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="FILE",
            help="Files to load into the InfluxDB targets: CSV, annotated CSV, JSON, "
            "JSON Lines or line protocol (told apart by name and content).",
            show_default=False,
        ),
    ] = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Deliver the InfluxDB targets' spools, then load FILEs into every target.

    A gather delivers the spools first as well. A bad line in a file stops the load with
    exit 2, naming the file and the line; the records before it are written.
    """
    from multivac.commands.gather import replay as run_replay

    with handled():
        env = _env()
        policy = config.influx_wait(env, config.retry_policy(env))
        targets = config.influx_targets(env)
        run_replay(config.state_dir(state_dir, env), targets, policy, err, files or ())


# ---------------------------------------------------------------------------- serve


class ServeFormat(StrEnum):
    """The outputs a long-running receiver writes to as records come."""

    influxdb = "influxdb"
    line_protocol = "line-protocol"
    json = "json"


@app.command()
def serve(
    host: Annotated[
        str,
        typer.Option("--host", metavar="ADDRESS", help="Address to listen on."),
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option("--port", metavar="PORT", min=0, max=65535, help="Port to listen on."),
    ] = 8080,
    fmt: Annotated[
        ServeFormat,
        typer.Option(
            "--format",
            "-f",
            case_sensitive=False,
            help="Output: influxdb writes to INFLUX_URL/INFLUX_BUCKET; line-protocol and "
            "json write records as they come to stdout or --output.",
        ),
    ] = ServeFormat.line_protocol,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write to this file instead of stdout.",
            show_default=False,
        ),
    ] = None,
    insecure_no_signature: Annotated[
        bool,
        typer.Option(
            "--insecure-no-signature",
            help="Start without MULTIVAC_WEBHOOK_SECRET and accept unsigned deliveries "
            "(a local trial only; warns on every start).",
        ),
    ] = False,
    lean_tags: Annotated[
        bool,
        typer.Option(
            "--lean-tags",
            help="Store job_id, run_id, run_attempt and commit_sha as fields (as gather "
            "--lean-tags does; use the same choice for both).",
        ),
    ] = False,
    create_bucket: Annotated[
        bool,
        typer.Option(
            "--create-bucket", help="Create INFLUX_BUCKET when it does not exist (influxdb)."
        ),
    ] = False,
    rules: RulesOpt = None,
    no_logs: Annotated[
        bool,
        typer.Option(
            "--no-logs",
            help="Do not download logs: failed jobs are keyed unknown_failure at once.",
        ),
    ] = False,
    steps: Annotated[
        bool,
        typer.Option(
            "--steps",
            help="Also write a 'steps' point per completed step of each job (as gather --steps).",
        ),
    ] = False,
    runs: Annotated[
        bool,
        typer.Option(
            "--runs/--no-runs",
            help="Write a 'runs' point per run attempt when a run completes and serve saw all "
            "its jobs (as gather does).",
        ),
    ] = True,
    price_table: PriceTableOpt = None,
    max_wait: MaxWaitOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Receive GitHub's workflow_job and workflow_run webhooks and write jobs as they finish.

    POST /webhook takes deliveries signed with MULTIVAC_WEBHOOK_SECRET; GET /metrics
    shows the jobs queued and running now per runner label (Prometheus); GET /healthz
    says whether the store and the output are reachable. Failed jobs are classified in
    the background, from their logs (GITHUB_TOKEN). Stops cleanly on SIGTERM.
    """
    from multivac.commands.serve import serve as run_serve

    with handled():
        plan = config.plan_serve(
            _env(),
            host=host,
            port=port,
            output_format=Format(fmt.value),
            output=output,
            insecure=insecure_no_signature,
            lean=lean_tags,
            create_bucket=create_bucket,
            rules=rules,
            fetch_logs=not no_logs,
            max_wait=max_wait,
            state=state_dir,
            steps=steps,
            runs=runs,
            prices=price_table,
        )
        run_serve(plan, err)


# ---------------------------------------------------------------------------- classify


@app.command()
def classify(
    logs: Annotated[
        list[Path],
        typer.Argument(metavar="LOG", help="Log files (downloaded, or copied from the web UI)."),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON array of {path, type, rule, ...}.")
    ] = False,
    rules: RulesOpt = None,
) -> None:
    """Classify local log files: per file, `PATH: TYPE` and the evidence line below it."""
    from multivac.commands import local

    with handled():
        sources = config.rule_sources(rules, _env())
        code = local.classify_files(logs, sources, as_json, err)
        if code:
            raise typer.Exit(code)


# ---------------------------------------------------------------------------- rules


@rules_app.command("list")
def rules_list(rules: RulesOpt = None) -> None:
    """Show the effective catalog: built-in rules plus --rules, by priority."""
    from multivac.commands import local

    with handled():
        local.list_rules(config.rule_sources(rules, _env()))


@rules_app.command("check")
def rules_check(
    files: Annotated[list[Path], typer.Argument(metavar="FILE", help="Rule files to validate.")],
) -> None:
    """Validate rule files: names each bad entry and why, exit 2 when any is bad.

    Checks the failure rules (`rules:`) and the test-result parsers (`tests:`), each
    against its own matching and near-miss examples.
    """
    from multivac.commands import local

    with handled():
        code = local.check_rules(files, err)
        if code:
            raise typer.Exit(code)


@rules_app.command("suggest")
def rules_suggest(
    repos: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="OWNER/REPO",
            help="Only these repositories (default: every one the store holds).",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="DURATION|DATE",
            help="Only jobs of runs created since (default 90d).",
            show_default=False,
        ),
    ] = None,
    top: Annotated[
        int, typer.Option("--top", metavar="N", min=1, help="At most this many drafts.")
    ] = 10,
    state_dir: StateDirOpt = None,
) -> None:
    """Draft rules for the failures no rule knows (unknown_failure), from the local store.

    Jobs are grouped by the signature of the line that most likely names the cause;
    the largest groups become draft rules (pattern, a type guess, the jobs' own lines as
    examples) printed as YAML for a person to review. Nothing is written.
    """
    from multivac.commands import local

    with handled():
        env = _env()
        window = config.parse_window(since if since is not None else "90d", None)
        found = local.suggest_rules(
            config.state_dir(state_dir, env), tuple(repos or ()), window.since, top
        )
        err.print(f"{found} clusters of unknown failures.", markup=False)


@logs_app.command("show")
def logs_show(
    job_id: Annotated[int, typer.Argument(metavar="JOB_ID", help="The job's id.")],
    state_dir: StateDirOpt = None,
) -> None:
    """Print a failed job's log as archived by gather (works after GitHub deleted it)."""
    from multivac.commands import local

    with handled():
        local.show_log(config.state_dir(state_dir, _env()), job_id)


# ---------------------------------------------------------------------------- failures

FailSinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since",
        metavar="DURATION|DATE",
        help="Start of the window: a duration ago (30d, 12h) or an ISO date. Default 7d.",
        show_default=False,
    ),
]
OfflineOpt = Annotated[
    bool,
    typer.Option(
        "--offline", help="Use only the local store; do not gather what it does not cover."
    ),
]


def _store_command(
    repos: list[str] | None,
    since: str | None,
    until: str | None,
    rules: list[str] | None,
    state_dir: Path | None,
    offline: bool,
    *,
    all_stored: bool = False,
) -> tuple[config.StorePlan, config.GitHubSettings, RetryPolicy]:
    env = _env()
    plan = config.plan_store(
        env,
        repos=repos,
        since=since,
        until=until,
        rules=rules,
        state=state_dir,
        offline=offline,
        all_stored=all_stored,
    )
    return plan, config.github_settings(env), config.retry_policy(env)


@failures_app.command("stats")
def failures_stats(
    repos: RepoArg = None,
    since: FailSinceOpt = None,
    until: UntilOpt = None,
    rules: RulesOpt = None,
    state_dir: StateDirOpt = None,
    offline: OfflineOpt = False,
    by: Annotated[
        StatsBy,
        typer.Option(
            "--by",
            case_sensitive=False,
            help="type: per failure type; signature: per failure signature (the evidence "
            "line without times, numbers and paths), with first and last seen.",
        ),
    ] = StatsBy.type,
) -> None:
    """Count failed jobs per failure type (or signature), largest first, with the flaky
    share and total.

    Reads the local store, gathering first whatever part of the window it lacks.
    """
    from multivac.commands import failures

    with handled():
        plan, github, policy = _store_command(repos, since, until, rules, state_dir, offline)
        failures.stats(plan, github, policy, err, by_signature=by is StatsBy.signature)


@failures_app.command("new")
def failures_new(
    repos: RepoArg = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="DURATION|DATE",
            help="Start of the window (default 1d).",
            show_default=False,
        ),
    ] = None,
    until: UntilOpt = None,
    rules: RulesOpt = None,
    state_dir: StateDirOpt = None,
    offline: OfflineOpt = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print a JSON array of {signature, type, text, jobs, first_seen, first_url, "
            "commit_sha}.",
        ),
    ] = False,
) -> None:
    """List failure signatures first seen in the window, with the first job and count.

    For each: the first job, its commit, and how many jobs of the window failed that way.

    "First seen" looks at everything the local store holds for the repositories, so a
    failure that came back after a quiet week is not new.
    """
    from multivac.commands import failures

    with handled():
        env = _env()
        plan = config.plan_store(
            env,
            repos=repos,
            since=since,
            until=until,
            rules=rules,
            state=state_dir,
            offline=offline,
            default_since="1d",
        )
        failures.new(
            plan, config.github_settings(env), config.retry_policy(env), err, as_json=as_json
        )


@failures_app.command("watch")
def failures_watch(
    failure_type: Annotated[str, typer.Argument(metavar="TYPE", help="A failure type.")],
    repos: RepoArg = None,
    since: FailSinceOpt = None,
    until: UntilOpt = None,
    rules: RulesOpt = None,
    state_dir: StateDirOpt = None,
    offline: OfflineOpt = False,
) -> None:
    """List the jobs of one failure type with their links and evidence lines."""
    from multivac.commands import failures

    with handled():
        plan, github, policy = _store_command(repos, since, until, rules, state_dir, offline)
        failures.watch(failure_type, plan, github, policy, err)


@app.command()
def report(
    repos: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="OWNER/REPO",
            help="Repositories to report (default: $GITHUB_REPOSITORY, else every "
            "repository the local store holds for the configured GitHub).",
            show_default=False,
        ),
    ] = None,
    html: Annotated[
        Path,
        typer.Option("--html", metavar="FILE", help="Write a self-contained HTML page here."),
    ] = Path("multivac-report.html"),
    since: FailSinceOpt = None,
    until: UntilOpt = None,
    rules: RulesOpt = None,
    price_table: PriceTableOpt = None,
    state_dir: StateDirOpt = None,
    offline: OfflineOpt = False,
) -> None:
    """Write a self-contained HTML report of the window from the local store.

    Failures by type over time, top failing jobs with evidence, queue time percentiles
    and queue depth by runner label, usage by label over time, cost by failure type,
    slowest and flaky jobs, top failing and flaky tests. The page needs no network to
    view. Whatever part of the window the store lacks is gathered first (unless
    --offline).
    """
    from multivac.commands import failures

    with handled():
        plan, github, policy = _store_command(
            repos, since, until, rules, state_dir, offline, all_stored=True
        )
        prices = config.price_table(price_table, _env())
        failures.report(plan, html, github, policy, err, prices)


# ---------------------------------------------------------------------------- minutes

StoreRepoArg = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="OWNER/REPO",
        help="Repositories (default: $GITHUB_REPOSITORY, else every repository the local "
        "store holds for the configured GitHub).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (the same as --format json).")]


@app.command("usage")
def usage_command(
    repos: StoreRepoArg = None,
    org: Annotated[
        str | None,
        typer.Option(
            "--org",
            metavar="ORG",
            help="Every non-archived repository of this organisation (or user); with "
            "--offline, its repositories in the local store.",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="DURATION|DATE",
            help="Start of the window: a duration ago (30d, 12h) or an ISO date. Default 30d.",
            show_default=False,
        ),
    ] = None,
    until: UntilOpt = None,
    by: Annotated[
        GroupBy,
        typer.Option("--by", case_sensitive=False, help="What each row adds up."),
    ] = GroupBy.LABEL,
    period: Annotated[
        Period,
        typer.Option(
            "--period",
            case_sensitive=False,
            help="UTC days, ISO weeks (from Monday) or calendar months.",
        ),
    ] = Period.DAY,
    fmt: Annotated[
        UsageFormat,
        typer.Option(
            "--format",
            "-f",
            case_sensitive=False,
            help="An aligned table with a total line, CSV, or a JSON array of "
            "{period, group, jobs, runner_minutes, billable_minutes, cost_usd}.",
        ),
    ] = UsageFormat.TABLE,
    as_json: JsonOpt = False,
    price_table: PriceTableOpt = None,
    state_dir: StateDirOpt = None,
    offline: OfflineOpt = False,
) -> None:
    """Jobs, runner minutes, billable minutes and cost per period and group.

    A job counts whole in the period of its created_at. --by failure_type shows what
    failures cost: the minutes of failed attempts plus those of the re-runs they caused.
    Reads the local store, gathering first whatever part of the window it lacks.
    """
    from multivac.commands.minutes import usage_report

    with handled():
        env = _env()
        plan = config.plan_usage(
            env,
            repos=repos,
            org=org,
            since=since,
            until=until,
            by=by,
            period=period,
            output_format=fmt,
            as_json=as_json,
            prices=price_table,
            state=state_dir,
            offline=offline,
        )
        usage_report(plan, config.github_settings(env), config.retry_policy(env), err)


@app.command("capacity")
def capacity_command(
    repos: StoreRepoArg = None,
    since: FailSinceOpt = None,
    until: UntilOpt = None,
    by: Annotated[
        CapacityBy,
        typer.Option("--by", case_sensitive=False, help="Count per runner label or runner group."),
    ] = CapacityBy.LABEL,
    fmt: Annotated[
        CapacityFormat,
        typer.Option(
            "--format",
            "-f",
            case_sensitive=False,
            help="table or json: per label max_running, p95_running, max_queued, "
            "minutes_with_queue, busiest. influxdb (INFLUX_URL/INFLUX_BUCKET) or "
            "line-protocol: a runner_load point per label and minute with activity.",
        ),
    ] = CapacityFormat.TABLE,
    as_json: JsonOpt = False,
    create_bucket: Annotated[
        bool,
        typer.Option(
            "--create-bucket", help="Create INFLUX_BUCKET when it does not exist (influxdb)."
        ),
    ] = False,
    state_dir: StateDirOpt = None,
    offline: OfflineOpt = False,
) -> None:
    """How many jobs waited for and ran on each runner label, minute by minute.

    A minute counts its busiest instant, so max_running is the true peak. Reads the
    local store, gathering first whatever part of the window it lacks.
    """
    from multivac.commands.minutes import capacity_report

    with handled():
        env = _env()
        plan = config.plan_capacity(
            env,
            repos=repos,
            since=since,
            until=until,
            by=by,
            output_format=fmt,
            as_json=as_json,
            create_bucket=create_bucket,
            state=state_dir,
            offline=offline,
        )
        capacity_report(plan, config.github_settings(env), config.retry_policy(env), err)


@app.command()
def reclassify(
    repos: Annotated[
        list[str] | None,
        typer.Argument(metavar="OWNER/REPO", help="Only these repositories (default: all stored)."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="DURATION|DATE",
            help="Only runs created since (default: all).",
            show_default=False,
        ),
    ] = None,
    until: UntilOpt = None,
    rules: RulesOpt = None,
    fmt: Annotated[
        Format | None,
        typer.Option(
            "--format",
            "-f",
            case_sensitive=False,
            help="Also write the changed records: influxdb deletes each job's old point and "
            "writes the new one; the file formats print the new records.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="File for the file formats.",
            show_default=False,
        ),
    ] = None,
    lean_tags: Annotated[
        bool, typer.Option("--lean-tags", help="The records were written with --lean-tags.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what would change.")
    ] = False,
    state_dir: StateDirOpt = None,
) -> None:
    """Re-apply the current rules to the evidence kept in the local store.

    Works offline, after GitHub deleted the logs; updates the jobs whose failure type
    changed (and their points, with --format).
    """
    from multivac.commands.reclassify import reclassify as run_reclassify

    with handled():
        plan = config.plan_reclassify(
            _env(),
            repos=repos,
            since=since,
            until=until,
            rules=rules,
            state=state_dir,
            output_format=fmt,
            output=output,
            lean=lean_tags,
            dry_run=dry_run,
        )
        run_reclassify(plan, err)


# ---------------------------------------------------------------------------- tests


@tests_app.command("parse")
def tests_parse(
    logs: Annotated[
        list[Path],
        typer.Argument(metavar="LOG", help="Log files (downloaded, or copied from the web UI)."),
    ],
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON array of {path, framework, test, configuration, status, "
            "line_number, message}.",
        ),
    ] = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also list the tests that passed.")
    ] = False,
    rules: RulesOpt = None,
) -> None:
    """Print the test results found in local log files (`multivac tests LOG...`).

    Works offline. Per file: each failed, hung, flaky or skipped test (passed ones with
    --all), its framework, configuration, log line and message. `--rules tarantool` adds
    tarantool's test-run format; a rules file may add its own `tests:` parsers.
    """
    from multivac.commands.tests import parse_logs

    with handled():
        sources = config.rule_sources(rules, Environment())
        code = parse_logs(logs, sources, as_json, show_all, err)
        if code:
            raise typer.Exit(code)


@tests_app.command("stats")
def tests_stats(
    repos: RepoArg = None,
    since: FailSinceOpt = None,
    until: UntilOpt = None,
    rules: RulesOpt = None,
    state_dir: StateDirOpt = None,
    offline: OfflineOpt = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print a JSON array of {test, framework, failures, flaky, first_seen, "
            "last_seen, last_url}.",
        ),
    ] = False,
) -> None:
    """List the failing tests of the window, most failures first.

    For each: how often it failed, its flaky share, first and last seen, and the last
    job's link. `failures` counts the failed, hung and flaky results of the test; `flaky` how many
    of them were flaky. Reads the local store, gathering first whatever part of the
    window it lacks (unless --offline).
    """
    from multivac.commands.tests import stats

    with handled():
        plan, github, policy = _store_command(repos, since, until, rules, state_dir, offline)
        stats(plan, github, policy, err, as_json=as_json)


@tests_app.command("last-seen")
def tests_last_seen(
    repos: RepoArg = None,
    branch: Annotated[
        str | None,
        typer.Option(
            "--branch", metavar="BRANCH", help="Only runs of this branch.", show_default=False
        ),
    ] = None,
    fmt: Annotated[
        LastSeenFormat,
        typer.Option("--format", "-f", case_sensitive=False, help="csv, or a self-contained page."),
    ] = LastSeenFormat.csv,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write to this file instead of stdout.",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="DURATION|DATE",
            help="Start of the window (default 30d).",
            show_default=False,
        ),
    ] = None,
    until: UntilOpt = None,
    rules: RulesOpt = None,
    state_dir: StateDirOpt = None,
    offline: OfflineOpt = False,
) -> None:
    """When each failing test was last seen, where, and how often.

    Per test, configuration, status and runner label: the last time seen, the branch,
    the count, and links to the last job and its log. The original multivac's
    `last_seen` report, from the local store (gathering first whatever part of the
    window it lacks, unless --offline).
    """
    from multivac.commands.tests import last_seen

    with handled():
        env = Environment()
        plan = config.plan_store(
            env,
            repos=repos,
            since=since,
            until=until,
            rules=rules,
            state=state_dir,
            offline=offline,
            default_since="30d",
        )
        last_seen(
            plan,
            config.github_settings(env),
            config.retry_policy(env),
            err,
            branch=branch,
            fmt=fmt,
            output=output,
        )


# ---------------------------------------------------------------------------- check


@app.command()
def check(
    repos: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="OWNER/REPO",
            help="Only these repositories (default: every repository the local store holds).",
            show_default=False,
        ),
    ] = None,
    failure_share: Annotated[
        list[str] | None,
        typer.Option(
            "--failure-share",
            metavar="TYPE[=FACTOR]",
            help="Fire when a failure type's share of all jobs in the last --hours grew by "
            "FACTOR (default 2) over the hours before; TYPE '*' checks every type "
            "(repeatable).",
            show_default=False,
        ),
    ] = None,
    new_signatures: Annotated[
        bool,
        typer.Option(
            "--new-signatures",
            help="Fire on a failure signature that no job had before the last --hours.",
        ),
    ] = False,
    queue_p95: Annotated[
        list[str] | None,
        typer.Option(
            "--queue-p95",
            metavar="LABEL=DURATION",
            help="Fire when a runner label's queue time p95 is over DURATION; LABEL '*' "
            "checks every label (repeatable).",
            show_default=False,
        ),
    ] = None,
    flaky_share: Annotated[
        list[str] | None,
        typer.Option(
            "--flaky-share",
            metavar="WORKFLOW=PERCENT",
            help="Fire when more than PERCENT of a workflow's failed jobs passed on a "
            "re-run; WORKFLOW '*' checks every workflow (repeatable).",
            show_default=False,
        ),
    ] = None,
    hours: Annotated[
        float | None,
        typer.Option(
            "--hours",
            metavar="N",
            help="The window of the rules given as flags, in hours (default: alerts.hours "
            "of the config file, else 24).",
            show_default=False,
        ),
    ] = None,
    min_jobs: Annotated[
        int | None,
        typer.Option(
            "--min-jobs",
            metavar="N",
            min=1,
            help="Fire only with at least N jobs behind a finding (default 5; 1 for new "
            "signatures).",
            show_default=False,
        ),
    ] = None,
    max_wait: Annotated[
        str | None,
        typer.Option(
            "--max-wait",
            metavar="DURATION",
            help="How long to retry posting to the webhook (a duration, default 1m).",
            show_default=False,
        ),
    ] = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Evaluate alert rules over the local store; exit 4 when one fires.

    Rules come from the flags, or else from [[alerts.*]] in the config file. Prints one
    line per finding; inside GitHub Actions writes a Markdown summary to
    $GITHUB_STEP_SUMMARY; when a rule fires, posts it to the Slack-compatible webhook in
    $MULTIVAC_ALERT_WEBHOOK (with retries; the URL is never printed).
    """
    from multivac.alerts import EXIT_FIRED
    from multivac.commands.check import check as run_check

    with handled():
        plan = config.plan_check(
            _env(),
            repos=repos,
            failure_share=failure_share,
            new_signatures=new_signatures,
            queue_p95=queue_p95,
            flaky_share=flaky_share,
            hours=hours,
            min_jobs=min_jobs,
            state=state_dir,
            max_wait=max_wait,
        )
        report = run_check(plan, err)
        if report.fired:
            err.print(
                f"{len(report.fired)} of {len(report.findings)} findings fired.", markup=False
            )
            raise typer.Exit(EXIT_FIRED)


# ---------------------------------------------------------------------------- config


@config_app.command("show")
def config_show(state_dir: StateDirOpt = None) -> None:
    """Print every setting, its value (secrets redacted) and where it came from.

    The origin is a flag, the environment, .env or the config file (with the line).
    """
    from multivac.doctor import effective

    with handled():
        env = _env()
        rows = effective(env, state_dir)
        width = max(len(name) for name, _ in rows)
        for name, source in rows:
            typer.echo(redact(f"{name:<{width}}  {source.value}  [{source.origin}]"))
        typer.echo(f"{'.env':<{width}}  {env.dotenv_path or '(none in the current directory)'}")
        chosen = f"{env.config.path} ({env.config.how})" if env.config else "(none)"
        typer.echo(f"{'config file':<{width}}  {chosen}")


@config_app.command("init")
def config_init() -> None:
    """Print a complete, commented example config file (multivac.toml) to stdout."""
    from multivac.configfile import EXAMPLE

    typer.echo(EXAMPLE, nl=False)


@app.command()
def doctor(
    repos: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="OWNER/REPO",
            help="Repositories whose Actions must be readable (default: $GITHUB_REPOSITORY).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Check GitHub and InfluxDB: reachability, token, bucket, API budget; one line each.

    Exits 1 when any check fails.
    """
    from multivac.doctor import Check
    from multivac.doctor import doctor as run_doctor

    def emit(check: Check) -> None:
        mark = {True: "ok  ", False: "FAIL", None: "warn"}[check.ok]
        typer.echo(f"{mark}  {redact(check.text)}")

    with handled():
        if not run_doctor(_env(), repos or [], emit):
            raise typer.Exit(1)


def _terminate(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """Entry point; the last guard so that a user never sees a traceback."""
    # SIGTERM (a cancelled CI job, `kill`) stops like Ctrl-C: what was gathered is written
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app(prog_name="multivac")
    except SystemExit:
        raise
    except KeyboardInterrupt:
        err.print("interrupted.", markup=False)
        sys.exit(EXIT_INTERRUPTED)
    except OSError as exc:
        if exc.errno not in _OUTPUT_ERRNOS:
            _unexpected(exc)
        sys.exit(_output_failed(exc))
    except Exception as exc:  # pragma: no cover - a bug, reported in one line
        _unexpected(exc)


def _unexpected(exc: Exception) -> NoReturn:
    if os.environ.get("MULTIVAC_DEBUG"):
        raise exc
    err.print(
        f"error: unexpected {type(exc).__name__}: {redact(str(exc))} "
        "(set MULTIVAC_DEBUG=1 to see the traceback)",
        markup=False,
    )
    sys.exit(1)
