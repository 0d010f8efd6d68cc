"""The exceptions that drivers turn into one-line messages and exit codes."""


class NormcompressError(Exception):
    """A runtime failure the user can act on: exit code 1, one line, no traceback."""

    exit_code = 1


class UsageError(NormcompressError):
    """The user asked for something malformed (a bad norm, device or dataset): exit code 2."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration that does not check (typed or read from a run's config.json)."""


class StoreError(NormcompressError):
    """The run store, or a run in it, is missing, damaged or busy."""


class MissingRunFile(StoreError):
    """One of a run's files is not there."""


def one_line_error(exc: BaseException) -> str:
    """An exception as the one line a user reads: our own message, or the kind and text of any other."""
    return str(exc) if isinstance(exc, NormcompressError) else f"{type(exc).__name__}: {exc}"
