"""Defaults shared by the command line, the pipeline, its components and serving: defined once here
and imported, so a session or a blessing means the same thing on every path."""

DEFAULT_SESSION_GAP = 3600  # seconds of inactivity that end a session
DEFAULT_METRIC = "recall@20"  # what the blessing and the tuning compare
