"""`movierec` command line: data fetch|inspect|split, evaluate, train, recommend, pipeline run|compile.

Human-readable output goes to stdout (progress to stderr); `--json` prints one machine-readable JSON
document instead. One module per command group; `common` holds what they share.
"""

# First of the movierec imports: it hides TensorFlow's start-up logs unless --verbose, which only
# works before anything below imports TensorFlow (see the module).
import movierec.cli.quiet_startup  # noqa: F401
from movierec.cli.main import main

__all__ = ["main"]
