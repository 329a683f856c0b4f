"""What kind of failure an exception is: the user's to fix, the environment's, or a proxy's own.

- `UserError`: a setting, a data file or a workdir the user can fix. `main` prints its message as one
  line (cause and fix) and exits non-zero; the traceback only with --traceback (or $LPZERO_TRACEBACK).
- Environment errors (`is_environment_error`: OSError such as ENOSPC/EACCES, MemoryError, an
  accelerator out of memory) are never a score: a run stops on them and keeps what it computed.
- Anything else raised while scoring one architecture is that proxy's own failure (numerical or
  otherwise): recorded with its reason and retried by the next run.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; the message names the cause and the fix."""


class ConfigError(UserError, ValueError):
    """A config setting is invalid (the message names the setting and the accepted values)."""


class DataFileError(UserError, ValueError):
    """A data or state file is damaged or of the wrong form (the message names the file and line)."""


class ModelProtocolError(UserError, ValueError):
    """A model or a batch that breaks the scoring protocol (nothing sown, token ids outside the
    vocabulary): found before any proxy is scored."""


class WorkdirBusyError(UserError, RuntimeError):
    """Another process holds the workdir."""


class RepeatedFailureError(UserError, RuntimeError):
    """A proxy failed with the same error on the first architectures of a run: a configuration
    problem, not a property of the architectures."""


def is_environment_error(error: BaseException) -> bool:
    """True for failures of the machine rather than of the computation: OS errors (disk full,
    permission denied, missing directory), host memory, accelerator memory (RESOURCE_EXHAUSTED)."""
    if isinstance(error, UserError):  # e.g. a data file the user named that does not exist
        return False
    if isinstance(error, (OSError, MemoryError)):
        return True
    return type(error).__name__ in ("XlaRuntimeError", "JaxRuntimeError") and \
        "RESOURCE_EXHAUSTED" in str(error)


def describe(error: BaseException) -> str:
    """`Type: message` on one line (the reason recorded for a failed proxy)."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
