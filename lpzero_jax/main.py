"""Entry point: `python -m lpzero_jax.main --config=experiments/flexibert.py [--config.mode=rank ...]`.

Parses the ml_collections config file given by --config (any field can be overridden with
--config.<field>=value) and runs the mode named by `config.mode` with `config.workdir`.

`lpzero_jax.workdir.run` checks every setting before any work, locks the workdir and compares it
with the settings and data a previous run left there. A user error (a bad setting, missing or damaged data, a busy
workdir) and an error of the environment (disk full, permission) are printed as one line naming the
cause, with exit status 2 and 1; --traceback (or LPZERO_TRACEBACK=1) shows the whole traceback.
A multi-process job (`distributed.num_processes` > 1) runs in a forked child process that this one
supervises (`parallel.supervise`): a missing or dead peer, which makes JAX's runtime abort the
process, ends it with one `lpzero: error: process I of N: cause` line too, exit status 1.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path
from typing import List

from absl import app, flags
from ml_collections import config_flags

from lpzero_jax import parallel, workdir
from lpzero_jax.configs import NAMES, config_path
from lpzero_jax.errors import UserError, is_environment_error
from lpzero_jax.modes import MODES

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file (get_config()).",
                                          lock_config=True)
_TRACEBACK = flags.DEFINE_bool("traceback", False, "Show the full traceback of user errors "
                               "(also: LPZERO_TRACEBACK=1).")

EXIT_ENVIRONMENT_ERROR = 1
EXIT_USER_ERROR = 2


def report_error(error: BaseException, where: str = "") -> int:
    """Prints a user or environment error, or the failure of another process of the job, as one
    line on stderr (`where`: which process, in a multi-process job); returns the exit status, or
    0 when the error is of none of these kinds (a bug: the caller re-raises it with its
    traceback)."""
    if isinstance(error, UserError):
        status, kind = EXIT_USER_ERROR, "error"
    elif isinstance(error, parallel.HostFailure):
        status, kind = EXIT_ENVIRONMENT_ERROR, "error"
    elif is_environment_error(error):
        status, kind = EXIT_ENVIRONMENT_ERROR, "environment error"
    else:
        return 0
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, OSError) and not isinstance(error, UserError):
        text = f"{type(error).__name__}: {text}"
    print(f"lpzero: {kind}: {where}{text} (details: rerun with --traceback)", file=sys.stderr)
    return status


def usage() -> str:
    """The first-contact guide: how to run, then the shipped configs and the modes, one line each."""

    def first_line(path):
        lines = (ast.get_docstring(ast.parse(Path(path).read_text())) or "").strip().splitlines()
        return lines[0] if lines else ""

    out = ["usage: lpzero --config=NAME|FILE [--config.mode=MODE] [--config.FIELD=VALUE ...]",
           "", "configs shipped with the package (--config=NAME):"]
    out += [f"  {n:<14} {first_line(config_path(n))}" for n in NAMES]
    out += ["", "modes (--config.mode=MODE; default: the config's):"]
    out += [f"  {n:<14} {MODES.get(n).summary}" for n in MODES.names()]
    out += ["", "Any field of the config can be set with --config.FIELD=VALUE; --helpfull lists "
            "every flag; --traceback shows the traceback of an error."]
    return "\n".join(out)


def _user_error(text: str) -> None:
    print(f"lpzero: error: {' '.join(str(text).split())}", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


def parse_flags(argv: List[str]) -> List[str]:
    """absl's flag parsing (the `flags_parser` of `app.run`), where a missing --config and --help
    print `usage()`, and every error of the command line (an unknown config or setting, with
    ml_collections' "did you mean"; a value of the wrong type; a config file that does not load)
    is one `lpzero: error:` line with exit status 2."""
    args = argv[1:]
    if any(a in ("-h", "--help", "--helpshort", "-?") for a in args):
        print(usage())
        sys.exit(0)
    if not any(a == "--config" or a.startswith("--config=") for a in args):
        print(usage(), file=sys.stderr)
        _user_error("--config is required: one of the configs above, or a config file")
    try:
        rest = flags.FLAGS(argv)
        _CONFIG.value.get("mode")  # a config file that failed to load raises here
    except KeyError as e:  # an override of a field the config has not: ml_collections's hint
        _user_error(f"unknown setting: {e.args[0] if e.args else e}")
    except (flags.Error, AttributeError, TypeError, ValueError, OSError, SyntaxError) as e:
        text = str(e)
        if "Failed loading config file" in text or isinstance(e, SyntaxError):

            given = next((a.split("=", 1)[1] for a in args if a.startswith("--config=")), "")
            cause = text.strip().splitlines()[-1].strip()[:160]
            text = (f"--config={given}: not a shipped config nor a config file that loads "
                    f"({cause}); shipped configs: "
                    f"{', '.join(NAMES)}")
        _user_error(text)
    if len(rest) > 1:
        _user_error(f"unexpected arguments: {' '.join(rest[1:])}")
    return rest


def main(argv):
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    wants_traceback = _TRACEBACK.value or os.environ.get("LPZERO_TRACEBACK", "") not in ("", "0")
    if parallel.is_multi_process(_CONFIG.value):
        # the job runs in a forked child process: an abort of JAX's runtime becomes one line
        status = parallel.supervise(_CONFIG.value, show_all=wants_traceback)
        if status is not None:  # the supervisor, once the job has ended
            sys.exit(status)
    try:
        workdir.run(_CONFIG.value)
    except Exception as e:  # noqa: BLE001  (sorted into user / environment / bug below)
        status = 0 if wants_traceback else report_error(e, parallel.process_label())
        # a multi-process job ends here (the traceback logged only where no line was printed)
        parallel.exit_if_distributed(e, status or EXIT_ENVIRONMENT_ERROR, log_traceback=not status)
        if not status:
            raise
        sys.exit(status)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
