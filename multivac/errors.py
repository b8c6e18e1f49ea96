"""One base exception per concern; only cli.py turns them into an exit code."""


class MultivacError(Exception):
    """Base of every error a user can cause or meet; its text is one sentence."""

    exit_code = 1


class ConfigError(MultivacError):
    """A missing or invalid setting (flag, environment variable or .env entry)."""

    exit_code = 2


class GitHubError(MultivacError):
    """GitHub answered with an error we cannot work around."""

    #: GitHub's HTTP status, when it answered with one
    status: int | None = None


class RuleError(MultivacError):
    """A failure-rule file or pack is invalid."""

    exit_code = 2


class StoreError(MultivacError):
    """The local SQLite store cannot be read or written."""


class SinkError(MultivacError):
    """An output (file or InfluxDB) rejected or could not take the records."""


class RateLimitStop(MultivacError):
    """GitHub's primary rate limit is used up until later than --max-wait allows: the
    gather stops with what it has (run it again after the reset)."""

    exit_code = 3


class LogPending(GitHubError):
    """A job's log could not be read for a transient reason within --max-wait: the job
    stays pending in the store and the next gather reads it again."""


class IngestError(MultivacError):
    """A file to read back (CSV, annotated CSV, JSON, JSON Lines, line protocol) is invalid."""

    exit_code = 2


def os_reason(exc: BaseException) -> str:
    """The reason of an OS error for the middle of a sentence: `strerror` where the OS
    gave one ("No such file or directory"), else the text, without its final period."""
    strerror = getattr(exc, "strerror", None)
    return str(strerror or exc).rstrip(".")
