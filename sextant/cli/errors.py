"""CLI failures and exit codes: 2 for bad input, 1 for everything else that went wrong."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


class CliError(Exception):
    """A failure to print as ``error: <message>`` (no traceback) and exit with ``code``."""

    def __init__(self, message: str, code: int = EXIT_FAILURE, details: list[str] | None = None):
        super().__init__(message)
        self.code = code
        self.details = list(details or [])


class BadInput(CliError):
    def __init__(self, message: str, details: list[str] | None = None):
        super().__init__(message, EXIT_BAD_INPUT, details)
