"""TF Serving's configuration for the pushed models: `models.config` (a `model_config_list`) and the
batching parameters (`batching.config`), as `tensorflow_model_server --model_config_file` and
`--batching_parameters_file` read them (serving/models.config and serving/batching.config in the
checkout, mounted by docker-compose.yml).

    scripts/run python -m movierec.serving.server_config runs/pipeline/serving > serving/models.config

lists every model folder below the push directory that holds at least one version (an all-digit
folder with a saved_model.pb, as the Pusher writes them), each with `base_path` under the
container's mount point (`--mount`, default /models) and the version policy "latest 2": the newest
version serves and the previous one stays loaded, so clients pinned to it (`/versions/N`) keep working
while a new one rolls out.
"""

from __future__ import annotations

import argparse
import posixpath
import sys

import tensorflow as tf

SAVED_MODEL_FILE = "saved_model.pb"
DEFAULT_MOUNT = "/models"
DEFAULT_VERSIONS = 2


def pushed_models(push_dir: str) -> list[str]:
    """The model folders below `push_dir` (local or a URI) with at least one complete version."""
    if not tf.io.gfile.isdir(push_dir):
        raise FileNotFoundError(f"push directory {push_dir!r} does not exist")
    found = []
    for name in sorted(tf.io.gfile.listdir(push_dir)):
        name = name.rstrip("/")
        folder = posixpath.join(push_dir, name)
        if not tf.io.gfile.isdir(folder):
            continue
        versions = [v.rstrip("/") for v in tf.io.gfile.listdir(folder)]
        complete = (
            tf.io.gfile.exists(posixpath.join(folder, v, SAVED_MODEL_FILE)) for v in versions if v.isdigit()
        )
        if any(complete):
            found.append(name)
    return found


def models_config(models: list[str], mount: str = DEFAULT_MOUNT, versions: int = DEFAULT_VERSIONS) -> str:
    """A `model_config_list` text proto serving `models` from `<mount>/<model>`, the latest
    `versions` versions of each."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    if versions < 1:
        raise ValueError(f"versions: keep at least 1 version loaded, got {versions}")
    config = model_server_config_pb2.ModelServerConfig()
    for name in models:
        model = config.model_config_list.config.add()
        model.name = name
        model.base_path = posixpath.join(mount, name)
        model.model_platform = "tensorflow"
        model.model_version_policy.latest.num_versions = versions
    return text_format.MessageToString(config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("push_dir", help="the Pusher's base directory (one folder per model)")
    parser.add_argument("--mount", default=DEFAULT_MOUNT, help="where the container mounts push_dir")
    parser.add_argument("--versions", type=int, default=DEFAULT_VERSIONS, help="latest N versions to serve")
    args = parser.parse_args(argv)
    models = pushed_models(args.push_dir)
    if not models:
        print(f"no pushed model (a <model>/<version>/saved_model.pb) below {args.push_dir}", file=sys.stderr)
        return 1
    sys.stdout.write(models_config(models, args.mount, args.versions))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
