"""The exceptions a user may see.

Every error the operator can cause or fix is a :class:`MigrateError`: it carries one paragraph that
says what went wrong, where, and how to fix it, and the exit code the CLI returns. ``cli.py`` catches
them in one place; ``--debug`` re-raises for a traceback.
"""

from __future__ import annotations

# Exit codes, the CLI contract (docs/concepts.md).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_AWAITING_APPROVAL = 3
EXIT_WAITING = 4
EXIT_LOCKED = 5
EXIT_INTERRUPTED = 130


class MigrateError(Exception):
    """Base of every user-facing error: a message and an exit code."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class BadInputError(MigrateError):
    """The operator's input (arguments, parameters, files) is wrong."""

    exit_code = EXIT_BAD_INPUT


class ParamError(BadInputError):
    """A step parameter names something the account does not have or cannot use (a bucket, a
    user, a KMS key). Raised while observing; the planner turns it into a :class:`PlaybookError`
    at the ``with.<param>`` line of the step."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


class PlaybookError(BadInputError):
    """A playbook is malformed; the message names ``file:line``."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.line = line


class StoreError(MigrateError):
    """The state store cannot be opened or is of an incompatible version."""

    exit_code = EXIT_BAD_INPUT


class NotFoundError(BadInputError):
    """A run, step, plan or target named on the command line does not exist."""


class StalePlanError(MigrateError):
    """A saved plan no longer matches what is in the account."""

    exit_code = EXIT_BAD_INPUT


class LockedError(MigrateError):
    """Another live process holds the run's lease."""

    exit_code = EXIT_LOCKED


class DryRunViolation(MigrateError):
    """Internal error: a mutating AWS call was attempted while planning.

    This is a bug in a step (its ``observe``/``decide`` must only read); the call was refused before
    it left the machine.
    """


class AwsError(MigrateError):
    """An AWS call failed in a way the step could not handle."""


class AwsConfigError(AwsError):
    """No usable AWS identity (no credentials, unknown profile, no region): the operator's setup,
    not the account, is wrong; the same exit code as other bad input."""

    exit_code = EXIT_BAD_INPUT


class StepFailed(MigrateError):
    """A step's action or verification failed; the run stays resumable."""
