"""Defaults and names shared by the command line, the pipeline, its components, the models and
serving: defined once here and imported, so a session, a role or a blessing means the same thing on
every path. (TFX's own names, e.g. the blessing's properties, come from TFX's constants modules.)"""

DEFAULT_SESSION_GAP = 3600  # seconds of inactivity that end a session
DEFAULT_METRIC = "recall@20"  # what the blessing and the tuning compare
DEFAULT_MAX_HISTORY = 200  # latest events a sequence model reads per query (evaluation and serving alike)

# The role of an event in a protocol's split, and its name in reports and split files.
TRAIN, VALIDATION, TEST = 0, 1, 2
ROLE_NAMES = {TRAIN: "train", VALIDATION: "validation", TEST: "test"}
# The pipeline's Examples split of each role (TFX's names: "eval" holds the validation users' events).
SPLIT_OF_ROLE = {TRAIN: "train", VALIDATION: "eval", TEST: "test"}
