"""Entry point: `python -m lpzero_jax.main --config=experiments/flexibert.py [--config.mode=rank ...]`.

Parses the ml_collections config file given by --config (any field can be overridden with
--config.<field>=value) and runs the mode named by `config.mode` with `config.workdir`.

`lpzero_jax.workdir.run` checks every setting before any work, locks the workdir and compares it
with the settings and data a previous run left there. A user error (a bad setting, missing or damaged data, a busy
workdir) and an error of the environment (disk full, permission) are printed as one line naming the
cause, with exit status 2 and 1; --traceback (or LPZERO_TRACEBACK=1) shows the whole traceback.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags
from ml_collections import config_flags

from lpzero_jax import parallel, workdir
from lpzero_jax.errors import UserError, is_environment_error

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file (get_config()).",
                                          lock_config=True)
_TRACEBACK = flags.DEFINE_bool("traceback", False, "Show the full traceback of user errors "
                               "(also: LPZERO_TRACEBACK=1).")

EXIT_ENVIRONMENT_ERROR = 1
EXIT_USER_ERROR = 2


def report_error(error: BaseException) -> int:
    """Prints a user or environment error as one line on stderr; returns the exit status, or 0
    when the error is of neither kind (a bug: the caller re-raises it with its traceback)."""
    if isinstance(error, UserError):
        status, kind = EXIT_USER_ERROR, "error"
    elif is_environment_error(error):
        status, kind = EXIT_ENVIRONMENT_ERROR, "environment error"
    else:
        return 0
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, OSError) and not isinstance(error, UserError):
        text = f"{type(error).__name__}: {text}"
    print(f"lpzero: {kind}: {text} (details: rerun with --traceback)", file=sys.stderr)
    return status


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if _CONFIG.value is None:
        raise app.UsageError("--config=experiments/<family>.py is required")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        workdir.run(_CONFIG.value)
    except Exception as e:  # noqa: BLE001  (sorted into user / environment / bug below)
        wants_traceback = _TRACEBACK.value or os.environ.get("LPZERO_TRACEBACK", "") not in ("", "0")
        status = 0 if wants_traceback else report_error(e)
        parallel.exit_if_distributed(e, status or EXIT_ENVIRONMENT_ERROR)  # a multi-process job ends here
        if not status:
            raise
        sys.exit(status)


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    app.run(main)
