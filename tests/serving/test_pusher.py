"""The atomic Pusher (components/pusher.py): its executor's `Do` pushes a real servable into a push
destination, as the pipeline's Pusher does. The servable is a small SavedModel written by the exports'
own `save_servable` in the layout of every Trainer export (saved_model.pb, variables/, assets/ with a
vocabulary file its lookup table reads, assets.extra/ with a warmup request): small, so the copy's
faults can be injected at any file without training a model.

A push leaves a complete version folder, byte for byte the export, that loads and replays its warmup
in a fresh process, and no staging folder; a copy that fails half-way (fault injection: the file copy
or the final rename raises) leaves the previous version as it was and no new or partial folder."""

from __future__ import annotations

import filecmp
import os
import shutil
import time

import numpy as np
import pytest
import tensorflow as tf
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils
from warmup_replay import assert_one_replayable_request_per_signature, replay_in_fresh_process

from movierec import storage
from movierec.components import pusher
from movierec.serving import warmup


class Scorer(tf.Module):
    """Raw item ids → a score per id: a vocabulary asset (a lookup table, like Transform's) and a
    weight variable, as a Trainer export holds them."""

    def __init__(self, vocabulary_file: str):
        super().__init__()
        self.vocabulary = tf.saved_model.Asset(vocabulary_file)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                self.vocabulary,
                tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER,
            ),
            default_value=-1,
        )
        self.weights = tf.Variable(np.linspace(0.5, 2.0, 3, dtype=np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="item_id")])
    def score(self, item_id):
        index = self.table.lookup(item_id)
        known = index >= 0
        return {"score": tf.where(known, tf.gather(self.weights, tf.maximum(index, 0)), 0.0)}


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("servable")
    (folder / "items.txt").write_text("50\n181\n258\n")
    module = Scorer(str(folder / "items.txt"))
    target = str(folder / "export")
    request = warmup.predict_log("scorer", "serving_default", {"item_id": np.array([b"181", b"x"])})
    warmup.save_servable(module, target, {"serving_default": module.score}, [request])
    return target


class Push:
    """A Trainer's Model artifact holding the export, its blessing, and the push destination."""

    def __init__(self, export_dir: str, folder, blessed: bool = True):
        self.model = standard_artifacts.Model()
        self.model.uri = str(folder / "Trainer" / "model")
        # the stock layout: the servable under <model uri>/Format-Serving (path_utils.serving_model_path)
        self.source = os.path.join(self.model.uri, "Format-Serving")
        shutil.copytree(export_dir, self.source)
        self.blessing = standard_artifacts.ModelBlessing()
        self.blessing.uri = str(folder / "Evaluator" / "blessing")
        self.blessing.set_int_custom_property("blessed", int(blessed))
        self.base = str(folder / "serving" / "scorer")
        self.folder = folder

    def run(self) -> standard_artifacts.PushedModel:
        """One execution of the executor; returns its pushed_model artifact."""
        pushed = standard_artifacts.PushedModel()
        pushed.uri = str(self.folder / "Pusher" / f"pushed_model-{time.monotonic_ns()}")
        destination = pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=self.base)
        )
        pusher.Executor().Do(
            {"model": [self.model], "model_blessing": [self.blessing]},
            {"pushed_model": [pushed]},
            {"push_destination": proto_utils.proto_to_json(destination), "custom_config": "null"},
        )
        return pushed

    def listing(self) -> list[str]:
        return sorted(os.listdir(self.base)) if os.path.isdir(self.base) else []


def same_tree(left: str, right: str) -> bool:
    """Both folders hold the same files with the same bytes (and the same folders)."""
    if storage.files_below(left) != storage.files_below(right):
        return False
    return all(
        filecmp.cmp(os.path.join(left, name), os.path.join(right, name), shallow=False)
        for name in storage.files_below(left)
    )


def next_second() -> None:
    """Versions are UNIX seconds: a push in the same second as the previous one would be skipped."""
    time.sleep(1.05 - time.time() % 1)


def test_a_push_is_a_whole_version_folder_that_loads_and_replays_its_warmup(export_dir, tmp_path):
    push = Push(export_dir, tmp_path)
    pushed = push.run()
    (version,) = push.listing()  # one version, no staging folder beside it
    assert version.isdigit()
    served = os.path.join(push.base, version)
    for name in ("saved_model.pb", "variables/variables.index", "assets.extra/tf_serving_warmup_requests"):
        assert os.path.isfile(os.path.join(served, name)), name
    assert os.listdir(os.path.join(served, "assets")) == ["items.txt"]  # the lookup table's vocabulary
    assert same_tree(served, push.source)
    # the stock Pusher's artifact: pushed, where and which version, with the archive copy
    assert pushed.get_int_custom_property("pushed") == 1
    assert pushed.get_string_custom_property("pushed_destination") == served
    assert pushed.get_string_custom_property("pushed_version") == version
    assert same_tree(pushed.uri, push.source)
    replayed = replay_in_fresh_process(served)  # what TF Serving does when it loads the version
    assert_one_replayable_request_per_signature(replayed)
    assert replayed["answers"][0]["score"].tolist() == [1.25, 0.0]  # "181": the asset's 2nd line


def test_a_model_that_is_not_blessed_is_not_pushed(export_dir, tmp_path):
    push = Push(export_dir, tmp_path, blessed=False)
    pushed = push.run()
    assert pushed.get_int_custom_property("pushed") == 0 and push.listing() == []


def fail_on_third_file(monkeypatch) -> None:
    real, calls = warmup.copy_file, []

    def copy_file(source: str, destination: str) -> None:
        calls.append(source)
        if len(calls) == 3:
            raise OSError(f"injected by the test: reading {source} failed")
        real(source, destination)

    monkeypatch.setattr(warmup, "copy_file", copy_file)


def fail_on_rename(monkeypatch) -> None:
    def publish_folder(staging, destination, **_):
        raise OSError(f"injected by the test: renaming {staging} failed")

    monkeypatch.setattr(storage, "publish_folder", publish_folder)


@pytest.mark.parametrize("fault", [fail_on_third_file, fail_on_rename], ids=["mid-copy", "at-rename"])
def test_a_failed_copy_leaves_the_previous_version_and_no_partial_folder(
    export_dir, tmp_path, monkeypatch, fault
):
    push = Push(export_dir, tmp_path)
    push.run()
    (good,) = push.listing()
    next_second()
    fault(monkeypatch)
    with pytest.raises(OSError, match="injected by the test"):
        push.run()
    # no new version, no staging folder; the previous version is whole and still serves
    assert push.listing() == [good]
    served = os.path.join(push.base, good)
    assert same_tree(served, push.source)
    monkeypatch.undo()
    answer = tf.saved_model.load(served).signatures["serving_default"](item_id=tf.constant(["258"]))
    assert answer["score"].numpy().tolist() == [2.0]
    # and the next push, the fault gone, adds a second whole version
    next_second()
    push.run()
    versions = push.listing()
    assert len(versions) == 2 and versions[0] == good and all(v.isdigit() for v in versions)
    assert same_tree(os.path.join(push.base, versions[1]), push.source)


def test_a_folder_without_a_saved_model_is_refused_naming_it(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"source: .* holds no saved_model\.pb"):
        warmup.copy_version(str(tmp_path / "empty"), str(tmp_path / "serving" / "1"))
    assert not (tmp_path / "serving").exists() or os.listdir(tmp_path / "serving") == []


def test_the_pipeline_pushes_with_the_atomic_executor(tmp_path):
    from movierec.pipeline.config import PipelineConfig
    from movierec.pipeline.pipeline import create_pipeline

    config = PipelineConfig(data_path=str(tmp_path), output_dir=str(tmp_path / "out"), model="gru4rec")
    (node,) = (n for n in create_pipeline(config, fingerprint="d").components if n.id == "Pusher")
    assert isinstance(node, pusher.Pusher) and node.executor_spec.executor_class is pusher.Executor
    # the stock Pusher's output and destination: nothing downstream changes
    assert list(node.outputs) == ["pushed_model"]
    assert node.outputs["pushed_model"].type_name == standard_artifacts.PushedModel.TYPE_NAME
    destination = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(node.exec_properties["push_destination"], destination)
    assert destination.filesystem.base_directory == config.serving_model_dir


def test_a_push_to_an_object_store_publishes_every_file_and_leaves_no_staging(
    export_dir, tmp_path, monkeypatch
):
    # TensorFlow's ram:// stands in for gs://: no folder rename, so the files are renamed one by one
    monkeypatch.chdir(tmp_path)  # a ram:// path mishandled as local would appear here as "ram:"
    push = Push(export_dir, tmp_path)
    push.base = f"ram://movierec-push-{time.monotonic_ns()}/scorer"
    pushed = push.run()
    version = pushed.get_string_custom_property("pushed_version")
    assert tf.io.gfile.listdir(push.base) in ([version], [f"{version}/"])  # no staging folder beside it
    served = f"{push.base}/{version}"
    for name in storage.files_below(push.source):
        with (
            tf.io.gfile.GFile(f"{served}/{name}", "rb") as copied,
            open(os.path.join(push.source, name), "rb") as f,
        ):
            assert copied.read() == f.read(), name
    assert not (tmp_path / "ram:").exists()
