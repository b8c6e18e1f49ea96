"""The config file: precedence (flags, environment, .env, file), where each value came
from, `config init`, and every error message (file, line, key; exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from multivac import config, configfile
from multivac.config import Environment
from multivac.errors import ConfigError
from multivac.sinks import Format
from tests.conftest import Invoke

GITHUB_TOKEN = "ghp_fileTESTtoken0123456789"


def write(tmp_path: Path, text: str, name: str = "multivac.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def env_of(tmp_path: Path, environ: dict[str, str] | None = None, dotenv: str = "") -> Environment:
    dotenv_path = ""
    if dotenv:
        dotenv_path = str(write(tmp_path, dotenv, ".env"))
    return Environment(environ=environ or {}, dotenv_path=dotenv_path)


# ---------------------------------------------------------------------------- precedence

FILE = """\
state_dir = "/from/file"
rules = ["tarantool"]

[github]
api_url = "https://ghe.file.example/api/v3"
repositories = ["file/one", "file/two"]

[gather]
format = "jsonl"
concurrency = 7
lean_tags = true
logs = false

[retry]
max_wait = "5m"
base = 2.5
influx_wait = "10s"
"""


@pytest.mark.parametrize(
    ("environ", "dotenv", "flag", "expected", "origin"),
    [
        ({}, "", None, "/from/file", "multivac.toml line 1 (state_dir)"),
        ({}, "MULTIVAC_STATE_DIR=/from/dotenv\n", None, "/from/dotenv", ".env"),
        (
            {"MULTIVAC_STATE_DIR": "/from/env"},
            "MULTIVAC_STATE_DIR=/from/dotenv\n",
            None,
            "/from/env",
            "environment",
        ),
        (
            {"MULTIVAC_STATE_DIR": "/from/env"},
            "MULTIVAC_STATE_DIR=/from/dotenv\n",
            "/from/flag",
            "/from/flag",
            "flag",
        ),
    ],
    ids=["file", "dotenv-over-file", "environment-over-dotenv", "flag-over-all"],
)
def test_flags_then_environment_then_dotenv_then_file(
    tmp_path: Path,
    environ: dict[str, str],
    dotenv: str,
    flag: str | None,
    expected: str,
    origin: str,
) -> None:
    write(tmp_path, FILE)
    env = env_of(tmp_path, environ, dotenv)
    found = config.pick(flag, env, "MULTIVAC_STATE_DIR")
    assert found.value == expected
    assert found.origin.startswith(origin)
    assert config.state_dir(Path(flag) if flag else None, env) == Path(expected)


def test_every_plan_reads_the_file(tmp_path: Path) -> None:
    write(tmp_path, FILE)
    env = env_of(tmp_path)
    plan = config.plan_gather(env, repos=None)
    assert plan.repos == ("file/one", "file/two")
    assert plan.github.api_url == "https://ghe.file.example/api/v3"
    assert plan.output_format is Format.jsonl
    assert plan.concurrency == 7 and plan.lean and not plan.fetch_logs
    assert plan.rules == ("tarantool",)
    assert plan.state_dir == Path("/from/file")
    assert plan.policy.max_wait_s == 300 and plan.policy.base_s == 2.5
    assert plan.influx_policy.max_wait_s == 10
    store = config.plan_store(env, repos=None, since=None, until=None)
    assert store.repos == ("file/one", "file/two") and store.rules == ("tarantool",)
    reclassify = config.plan_reclassify(
        env,
        repos=None,
        since=None,
        until=None,
        rules=None,
        state=None,
        output_format=None,
        output=None,
        lean=False,
        dry_run=True,
    )
    assert reclassify.lean  # the file's lean_tags: reclassify writes as gather wrote


def test_flags_and_variables_win_over_the_file(tmp_path: Path) -> None:
    write(tmp_path, FILE)
    env = env_of(
        tmp_path,
        {"GITHUB_API_URL": "https://api.github.com", "MULTIVAC_RETRY_BASE": "0.5"},
        "MULTIVAC_RULES=ours.yaml\n",
    )
    plan = config.plan_gather(
        env,
        repos=["flag/repo"],
        output_format=Format.csv,
        concurrency=2,
        max_wait="1m",
    )
    assert plan.repos == ("flag/repo",)
    assert plan.github.api_url == "https://api.github.com"
    assert plan.output_format is Format.csv and plan.concurrency == 2
    assert plan.policy.max_wait_s == 60 and plan.policy.base_s == 0.5
    assert plan.rules == ("ours.yaml",)


def test_github_repository_wins_over_the_files_repositories_and_org(tmp_path: Path) -> None:
    write(tmp_path, '[github]\nrepositories = ["file/one"]\norg = "fileorg"\n')
    plan = config.plan_gather(env_of(tmp_path, {"GITHUB_REPOSITORY": "env/repo"}), repos=None)
    assert plan.repos == ("env/repo",) and plan.org is None
    plan = config.plan_gather(env_of(tmp_path), repos=None)
    assert plan.repos == ("file/one",) and plan.org == "fileorg"
    plan = config.plan_gather(env_of(tmp_path), repos=None, org="flagorg")
    assert plan.repos == () and plan.org == "flagorg"


def test_without_a_file_nothing_changes(tmp_path: Path) -> None:
    env = env_of(tmp_path, {"GITHUB_REPOSITORY": "o/r"})
    assert env.config is None
    plan = config.plan_gather(env, repos=None)
    assert plan.output_format is Format.csv and plan.concurrency == 4
    assert plan.policy.max_wait_s == 900 and plan.fetch_logs and not plan.lean


def test_the_file_is_found_by_flag_then_variable_then_current_directory(tmp_path: Path) -> None:
    here = write(tmp_path, '[github]\napi_url = "https://here.example"\n')
    elsewhere = write(tmp_path, '[github]\napi_url = "https://elsewhere.example"\n', "b.toml")
    by_variable = write(tmp_path, '[github]\napi_url = "https://variable.example"\n', "c.toml")
    assert env_of(tmp_path).config is not None
    assert config.github_settings(env_of(tmp_path)).api_url == "https://here.example"
    variable = env_of(tmp_path, {"MULTIVAC_CONFIG": str(by_variable)})
    assert config.github_settings(variable).api_url == "https://variable.example"
    flagged = Environment(environ={"MULTIVAC_CONFIG": str(by_variable)}, config_path=elsewhere)
    assert config.github_settings(flagged).api_url == "https://elsewhere.example"
    from_dotenv = env_of(tmp_path, dotenv=f"MULTIVAC_CONFIG={by_variable}\n")
    assert config.github_settings(from_dotenv).api_url == "https://variable.example"
    here.unlink()
    assert env_of(tmp_path).config is None


def test_config_show_names_the_file_and_line_of_each_value(cli: Invoke, tmp_path: Path) -> None:
    write(
        tmp_path,
        FILE + '\n[[influx]]\nname = "cloud"\nurl = "https://c.example"\n'
        'org = "o"\nbucket = "b"\ntoken_env = "CLOUD_TOKEN"\n',
    )
    result = cli("config", "show", env={"CLOUD_TOKEN": "cloud-secret-value"})
    assert result.exit_code == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "[multivac.toml line 5 (github.api_url)]" in lines["GITHUB_API_URL"]
    assert "[multivac.toml line 9 (gather.format)]" in lines["gather.format"]
    assert "jsonl" in lines["gather.format"]
    assert "[multivac.toml line 15 (retry.max_wait)]" in lines["retry.max_wait"]
    assert "[environment (MULTIVAC_RETRY_BASE)]" in lines["MULTIVAC_RETRY_BASE"]
    assert "[default]" in lines["gather.since"]
    cloud = next(line for line in result.stdout.splitlines() if line.startswith("influx cloud"))
    assert "token from CLOUD_TOKEN (set)" in cloud and "multivac.toml line 19" in cloud
    assert "cloud-secret-value" not in result.stdout
    assert "multivac.toml (current directory)" in lines["config"]


# ---------------------------------------------------------------------------- config init


def test_config_init_prints_an_example_that_parses_back_and_names_every_key(
    cli: Invoke, tmp_path: Path
) -> None:
    result = cli("config", "init")
    assert result.exit_code == 0
    parsed = configfile.parse(result.stdout, Path("multivac.toml"))
    assert parsed.entries and parsed.blocks["influx"]
    for key in configfile.every_key():
        last = key.rsplit(".", 1)[-1]
        assert f"{last} = " in result.stdout, f"config init does not show {key}"
    # and the commands take it as it is
    write(tmp_path, result.stdout)
    shown = cli("config", "show")
    assert shown.exit_code == 0, shown.stderr
    from multivac.alerts import rules_from_file

    assert len(rules_from_file(parsed)) == 4


# ---------------------------------------------------------------------------- errors


ERRORS = [
    ("colour = 1\n", "multivac.toml line 1: unknown key colour (the top level knows alerts, "),
    (
        '[gather]\nformt = "csv"\n',
        "multivac.toml line 2: unknown key gather.formt ([gather] knows concurrency, "
        "create_bucket, format, junit_artifacts, lean_tags, log_archive_mb, logs, output, runs, "
        "since, steps, test_summary).",
    ),
    (
        '[[influx]]\nname = "a"\nurl = "http://a"\norg = "o"\nbucket = "b"\n'
        'token_env = "T"\npasswd = "x"\n',
        "multivac.toml line 7: unknown key influx[0].passwd ([influx[0]] knows bucket, ",
    ),
    (
        '[alerts]\n[[alerts.queue_p95]]\nthreshold = "5m"\nlabel = "x"\n',
        "multivac.toml line 4: unknown key alerts.queue_p95[0].label",
    ),
    (
        '[gather]\nconcurrency = "4"\n',
        "multivac.toml line 2: gather.concurrency must be an integer, got a string.",
    ),
    (
        '[gather]\nlean_tags = "yes"\n',
        "multivac.toml line 2: gather.lean_tags must be true or false, got a string.",
    ),
    (
        'rules = "tarantool"\n',
        "multivac.toml line 1: rules must be a list of strings, got a string.",
    ),
    (
        "[retry]\nmax_wait = 15\n",
        'multivac.toml line 2: retry.max_wait must be a duration like "15m" or "1h", got a number.',
    ),
    (
        '[retry]\nbase = "1s"\n',
        "multivac.toml line 2: retry.base must be a number, got a string.",
    ),
    (
        '[gather]\nformat = "xml"\n',
        "multivac.toml line 2: gather.format must be one of csv, json, influxdb, line-protocol, "
        "influx-csv, jsonl, got 'xml'.",
    ),
    ('github = "x"\n', "multivac.toml line 1: github must be a table, got a string."),
    (
        'influx = "x"\n',
        "multivac.toml line 1: influx must be an array of tables ([[influx]]), got a string.",
    ),
    (
        "[alerts]\n\n[[alerts.flaky_share]]\nthreshold_percent = 150\n",
        "multivac.toml line 4: alerts.flaky_share[0].threshold_percent must be a number from "
        "0 to 100, got a number.",
    ),
    (
        '[github]\napi_url = "https://x"\ntoken = "ghp_fileTESTtoken0123456789"\n',
        "multivac.toml line 3: github.token: a token is never written in the config file; name "
        "the environment variable that holds it with token_env.",
    ),
    (
        '[[influx]]\nname = "a"\nurl = "http://a"\norg = "o"\nbucket = "b"\n'
        'token = "ghp_fileTESTtoken0123456789"\n',
        "multivac.toml line 6: influx[0].token: a token is never written in the config file; ",
    ),
    (
        '\n[[influx]]\nname = "a"\nurl = "http://a"\norg = "o"\ntoken_env = "T"\n',
        "multivac.toml line 2: influx[0] has no bucket.",
    ),
    (
        '[[influx]]\nname = "a b"\nurl = "http://a"\norg = "o"\nbucket = "b"\ntoken_env = "T"\n',
        "multivac.toml line 2: influx[0].name 'a b' must be letters, digits, '.', '_' or '-'.",
    ),
    (
        '[[influx]]\nname = "a"\nurl = "http://a"\norg = "o"\nbucket = "b"\ntoken_env = "T"\n'
        '[[influx]]\nname = "a"\nurl = "http://b"\norg = "o"\nbucket = "b"\ntoken_env = "T"\n',
        "multivac.toml line 8: influx[1].name 'a' is already the name of the target at line 1.",
    ),
    ("[gather]\nformat = \n", "multivac.toml line 2: not valid TOML (invalid value, column 10)."),
    (
        '[github]\napi_url = "x"\n[github]\n',
        "multivac.toml line 3: not valid TOML (cannot declare ('github',) twice, column 8).",
    ),
    (
        '[alerts]\n[[alerts.failure_share]]\ntype = "*"\nfactor = 1\n',
        "multivac.toml line 4: alerts.failure_share[0].factor must be more than 1.",
    ),
    (
        "[alerts]\nhours = 0\n[[alerts.new_signatures]]\n",
        "multivac.toml line 2: alerts.hours must be more than 0.",
    ),
    (
        '[alerts]\n[[alerts.queue_p95]]\nthreshold = "10m"\nmin_jobs = 0\n',
        "multivac.toml line 4: alerts.queue_p95[0].min_jobs must be 1 or more.",
    ),
]


@pytest.mark.parametrize(("text", "message"), ERRORS, ids=[m[14:60] for _, m in ERRORS])
def test_every_problem_is_one_sentence_with_file_line_and_key(
    cli: Invoke, tmp_path: Path, text: str, message: str
) -> None:
    write(tmp_path, text)
    result = cli("check", "--state-dir", str(tmp_path / "state"))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: " + message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert GITHUB_TOKEN not in result.stderr
    assert "Traceback" not in result.stderr


TARGET = '[[influx]]\nname = "cloud"\nurl = "{url}"\norg = "{org}"\nbucket = "b"\ntoken_env = "T"\n'


@pytest.mark.parametrize(
    ("url", "org", "environ", "message"),
    [
        (
            "https://c.example",
            "o",
            {},
            "multivac.toml line 6: influx[0].token_env names T, which is not set in the "
            "environment or .env.",
        ),
        (
            "c.example:8086",
            "o",
            {"T": "tok"},
            "multivac.toml line 3: influx[0].url must be an http(s) URL, got 'c.example:8086'.",
        ),
        ("https://c.example", " ", {"T": "tok"}, "multivac.toml line 4: influx[0].org is empty."),
    ],
    ids=["token-variable-unset", "bad-url", "empty-org"],
)
def test_a_target_is_checked_when_influxdb_is_used(
    cli: Invoke, tmp_path: Path, url: str, org: str, environ: dict[str, str], message: str
) -> None:
    write(tmp_path, TARGET.format(url=url, org=org))
    shown = cli("config", "show", env=environ)
    assert shown.exit_code == 0  # the file is sound: only a gather to InfluxDB needs the target
    for args in (("gather", "o/r", "-f", "influxdb"), ("replay",), ("doctor",)):
        result = cli(*args, env={"GITHUB_API_URL": "http://127.0.0.1:9", **environ})
        text = result.stderr + result.stdout
        assert message in text, (args, text)
        if args[0] != "doctor":
            assert result.exit_code == 2


def test_a_token_from_dotenv_is_taken(tmp_path: Path) -> None:
    write(tmp_path, TARGET.format(url="https://c.example", org="o"))
    env = env_of(tmp_path, dotenv="T=from-dotenv-token\n")
    (target,) = config.influx_targets(env)
    assert target.name == "cloud" and target.token.reveal() == "from-dotenv-token"


def test_a_default_target_in_the_file_takes_the_influx_variables_over_its_fields(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        '[[influx]]\nname = "default"\nurl = "https://file.example"\norg = "fileorg"\n'
        'bucket = "filebucket"\ntoken_env = "FILE_TOKEN"\ntests_bucket = "tb"\n'
        '[[influx]]\nname = "other"\nurl = "https://other.example"\norg = "o"\nbucket = "b"\n'
        'token_env = "FILE_TOKEN"\n',
    )
    env = env_of(tmp_path, {"FILE_TOKEN": "file-token", "INFLUX_BUCKET": "envbucket"})
    default, other = config.influx_targets(env)
    assert (default.name, default.url, default.org, default.bucket) == (
        "default",
        "https://file.example",
        "fileorg",
        "envbucket",
    )
    assert default.token.reveal() == "file-token" and default.tests_bucket == "tb"
    assert other.name == "other" and other.url == "https://other.example"


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("flag", "the config file nope.toml (--config) does not exist."),
        ("variable", "the config file nope.toml (environment (MULTIVAC_CONFIG)) does not exist."),
    ],
)
def test_a_named_file_that_is_missing_is_an_error(cli: Invoke, how: str, message: str) -> None:
    if how == "flag":
        result = cli("--config", "nope.toml", "config", "show")
    else:
        result = cli("config", "show", env={"MULTIVAC_CONFIG": "nope.toml"})
    assert result.exit_code == 2
    assert result.stderr == f"error: {message}\n"


def test_the_config_flag_reaches_every_command(cli: Invoke, tmp_path: Path) -> None:
    write(tmp_path, '[gather]\nformat = "json"\n', "other.toml")
    result = cli("--config", "other.toml", "config", "show")
    assert "other.toml line 2 (gather.format)" in result.stdout
    assert "other.toml (--config)" in result.stdout


# ---------------------------------------------------------------------------- lines


@pytest.mark.parametrize(
    ("text", "path", "line"),
    [
        ("a = 1\n\n[t]\nb = 2\n", "t.b", 4),
        ('x = [\n  "[not]",\n  "a = b",\n]\ny = 1\n', "y", 5),
        ('x = """\n[fake]\nz = 1\n"""\nz = 2\n', "z", 5),
        ("x = '''\n[fake]\n'''\n[real]\nk = 1\n", "real.k", 5),
        ('x = "a # not a comment"  # a comment [x]\n[t]\nk = 1\n', "t.k", 3),
        ("[[a]]\nk = 1\n[[a]]\nk = 2\n[[a]]\n\nk = 3\n", "a[2].k", 7),
        ("[p]\n[[p.q]]\nk = 1\n[[p.q]]\nk = 2\n", "p.q[1].k", 5),
        ('"quoted key" = 1\nt.dotted = 2\n', "t.dotted", 2),
        ("x = { a = 1, b = [\n1,\n2] }\ny = 3\n", "y", 4),
        ('x = "\\"[t]\\""\n[u]\nk = 1\n', "u.k", 3),
    ],
)
def test_key_lines_see_through_strings_arrays_and_tables(text: str, path: str, line: int) -> None:
    assert configfile._key_lines(text)[path] == line


def test_a_zero_retry_base_names_where_it_was_set(tmp_path: Path) -> None:
    write(tmp_path, "[retry]\nbase = 0\n")
    with pytest.raises(ConfigError) as caught:
        config.retry_policy(env_of(tmp_path))
    assert str(caught.value) == (
        "MULTIVAC_RETRY_BASE must be a positive number of seconds "
        "(multivac.toml line 2 (retry.base) says 0)."
    )
