"""Pusher: TFX's Pusher whose copy into the push destination is atomic.

TFX's stock Pusher executor (`tfx.components.pusher.executor.Executor`) copies the Trainer's export
straight into `<base_directory>/<version>/`, file by file, `saved_model.pb` last. TF Serving polls
`<base_directory>` and lists version folders, so while the copy runs it can see a version that lacks
files, and a copy that fails half-way leaves such a folder there for good. `Executor` copies the export
the way the exports themselves are written (`serving.warmup.copy_version`, the helper behind
`save_servable`): into a dot-named staging folder beside the version (TF Serving skips names that are
not all digits), then a rename to `<base_directory>/<version>` (on object stores, which have no folder
rename, file by file with `saved_model.pb` last). A failure removes the staging folder and leaves
every existing version as it was.

Everything else is the stock Pusher's: the blessing checks (`CheckBlessing`), the model path
(`GetModelPath`), UNIX-timestamp versions, skipping a version folder that already exists, the
archive copy into the `pushed_model` artifact and its custom properties (`pushed`,
`pushed_destination`, `pushed_version`), so nothing downstream changes. `Pusher` is the stock
component with this executor (same spec, inputs, outputs and component id).
"""

from __future__ import annotations

import os
import time
from typing import Any

from absl import logging
from tfx import types
from tfx.components.pusher import component as pusher_component
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from movierec import storage
from movierec.serving.warmup import copy_version

_Versioning = pusher_pb2.Versioning


class Executor(pusher_executor.Executor):
    """The stock Pusher executor with an atomic copy into the filesystem destination (see the module)."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        """Pushes the blessed model to `<base_directory>/<UNIX time>/` atomically; marks the
        `pushed_model` artifact as the stock executor does (pushed 0 when not blessed)."""
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY]
        )
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model_path = self.GetModelPath(input_dict)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        kind = destination.WhichOneof("destination")
        if kind != "filesystem":
            raise NotImplementedError(
                f"push_destination: only a filesystem destination is supported, got {kind}"
            )
        filesystem = destination.filesystem
        if filesystem.versioning not in (_Versioning.AUTO, _Versioning.UNIX_TIMESTAMP):
            raise NotImplementedError(
                f"push_destination.filesystem.versioning: only UNIX_TIMESTAMP (or AUTO), got "
                f"{_Versioning.Name(filesystem.versioning)}"
            )
        version = str(int(time.time()))
        serving_path = os.path.join(filesystem.base_directory, version)  # as the stock executor names it
        if storage.exists(serving_path):
            # the stock rule: the same model blessed twice within a second is pushed once
            logging.info("Destination directory %s already exists, skipping current push.", serving_path)
        else:
            copy_version(model_path, serving_path)
            logging.info("Model written to serving path %s (staged, then renamed).", serving_path)
        io_utils.copy_dir(model_path, model_push.uri)  # the artifact's archive copy, as the stock one
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)
        logging.info("Model pushed to %s.", model_push.uri)


class Pusher(pusher_component.Pusher):
    """TFX's Pusher (same arguments, inputs, outputs and properties) running `Executor`.

    Args:
        model: the Trainer's `Model` channel.
        model_blessing: the Evaluator's `ModelBlessing` channel; only a blessed model is pushed.
        infra_blessing: an InfraValidator's `InfraBlessing` channel, optional.
        push_destination: a `PushDestination` with a `filesystem` `base_directory` (local or a URI),
            the folder TF Serving polls for versions of one model.
        custom_config: passed through, unused.
    """

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self,
        model: types.BaseChannel | None = None,
        model_blessing: types.BaseChannel | None = None,
        infra_blessing: types.BaseChannel | None = None,
        push_destination: pusher_pb2.PushDestination | None = None,
        custom_config: dict[str, Any] | None = None,
    ):
        if push_destination is None:
            raise ValueError("push_destination: required (a filesystem base_directory TF Serving polls)")
        super().__init__(
            model=model,
            model_blessing=model_blessing,
            infra_blessing=infra_blessing,
            push_destination=push_destination,
            custom_config=custom_config,
        )
