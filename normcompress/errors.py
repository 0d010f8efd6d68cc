"""The exceptions that drivers turn into one-line messages and exit codes."""


class NormcompressError(Exception):
    """A runtime failure the user can act on: exit code 1, one line, no traceback."""

    exit_code = 1


class UsageError(NormcompressError):
    """The user asked for something malformed (a bad norm, device or dataset): exit code 2."""

    exit_code = 2
