"""Hides TensorFlow's native start-up logging from the `movierec` command unless `movierec --verbose`.

Importing this module does the work, so movierec.cli (cli/__init__.py) imports it before anything that imports
TensorFlow (`movierec.models` imports Keras, hence TensorFlow, at module import). Both steps must
come first:

- TensorFlow's C++ logging reads `TF_CPP_MIN_LOG_LEVEL` once. It is set to 3 (fatal only) because the
  loudest line, "failed call to cuInit" on a machine without a GPU, is logged at ERROR level.
- Some of TensorFlow's shared libraries (TFLite's, the profiler's) log while they load ("Could not
  find cuda drivers on your machine", oneDNN notices) through a logger that ignores that variable, so
  TensorFlow is imported here with the process's stderr (file descriptor 2) sent to /dev/null.

The level is overridden, not defaulted: `scripts/run` already sets `TF_CPP_MIN_LOG_LEVEL=2` for every
command, which lets the cuInit error through. With `--verbose` nothing here happens and the variable
applies as set. `TF_ENABLE_ONEDNN_OPTS` is deliberately left alone: setting it to 0 would silence the
oneDNN notice by turning oneDNN off, which changes the numbers the CLI computes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

VERBOSE_FLAG = "--verbose"
QUIET_LOG_LEVEL = "3"


def verbose_requested(argv: Sequence[str]) -> bool:
    """Whether `--verbose` is among the options of the `movierec` group itself (the tokens before
    the first command name), the only place click accepts it."""
    for token in argv[1:]:
        if token == VERBOSE_FLAG:
            return True
        if not token.startswith("-"):
            return False
    return False


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow with file descriptor 2 pointing at /dev/null, then restores it. A failing
    import still raises, and its traceback is printed after stderr is back."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def quiet_tensorflow_startup(argv: Sequence[str]) -> None:
    if verbose_requested(argv) or "tensorflow" in sys.modules:  # too late once TensorFlow is loaded
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = QUIET_LOG_LEVEL
    import_tensorflow_quietly()


quiet_tensorflow_startup(sys.argv)
