"""The step cache: a step is reused only when its source, parameters, input content and code are
unchanged; what it restores reads like a real execution; push and failures are never stored."""

# No `from __future__ import annotations`: kfp reads the components' annotations as types.

import json
import os
from pathlib import Path

import pytest

from edgeship.errors import InputError
from edgeship.pipelines import cache as cache_module
from edgeship.pipelines.cache import StepCache, content_hash

pytest.importorskip("kfp", reason="the pipelines extra (kfp) is not installed")


def _chain():
    from kfp import dsl

    @dsl.component(base_image="python:3.11")
    def produce(data_path: str, times: int, rows: dsl.Output[dsl.Dataset]) -> str:
        import pathlib

        text = pathlib.Path(data_path).read_text() * times
        pathlib.Path(rows.path).write_text(text)
        rows.metadata["where"] = rows.path
        return "produced"

    @dsl.component(base_image="python:3.11")
    def consume(rows: dsl.Input[dsl.Dataset], suffix: str, fail: bool) -> str:
        import json
        import pathlib

        if fail:
            raise RuntimeError("asked to fail")
        return json.dumps({"text": pathlib.Path(rows.path).read_text() + suffix,
                           "where": rows.metadata["where"]})

    @dsl.pipeline(name="chain")
    def chain(data_path: str, times: int = 1, suffix: str = "!", fail: bool = False) -> None:
        produced = produce(data_path=data_path, times=times)
        consume(rows=produced.outputs["rows"], suffix=suffix, fail=fail)

    return chain


@pytest.fixture
def run_chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from edgeship.pipelines import local, registry

    monkeypatch.setitem(registry.PIPELINES, "chain", _chain())
    data = tmp_path / "data.txt"
    data.write_text("abc")
    step_cache = tmp_path / "cache"
    runs = iter(range(100))

    def run(runner: str = "in-process", **arguments):
        cache = StepCache.open(step_cache)
        workdir = tmp_path / f"run{next(runs)}"
        result = local.run_local("chain", {"data_path": str(data), **arguments}, workdir,
                                 runner=runner, cache=cache)
        return result, {s.name: ("CACHED" if s.cached else s.status) for s in result.steps}

    run.data = data  # type: ignore[attr-defined]
    return run


@pytest.mark.parametrize("runner", ["in-process", "kfp-local"])
def test_an_unchanged_rerun_reuses_every_step_and_reads_like_a_real_one(run_chain,
                                                                        runner: str) -> None:
    first, statuses = run_chain(runner)
    assert statuses == {"produce": "SUCCESS", "consume": "SUCCESS"}
    again, statuses = run_chain(runner)
    assert statuses == {"produce": "CACHED", "consume": "CACHED"}
    assert first.steps[-1].summary["text"] == again.steps[-1].summary["text"] == "abc!"
    # the restored artifact is in the new run's own folder, and its metadata follows it
    rows = next(again.run_dir.rglob("rows"))
    assert rows.read_text() == "abc" and str(again.workdir) in str(rows)
    assert again.steps[-1].summary["where"] == str(rows)
    output = json.loads((again.run_dir / "produce" / "executor_output.json").read_text())
    artifact = output["artifacts"]["rows"]["artifacts"][0]
    assert artifact["uri"].endswith(str(rows)) and str(first.workdir) not in json.dumps(output)


def test_a_changed_parameter_reruns_its_step_and_what_follows_only(run_chain) -> None:
    run_chain()
    result, statuses = run_chain(suffix="?")
    assert statuses == {"produce": "CACHED", "consume": "SUCCESS"}
    assert result.steps[-1].summary["text"] == "abc?"
    _, statuses = run_chain(times=2)
    assert statuses == {"produce": "SUCCESS", "consume": "SUCCESS"}  # new rows: new input


def test_new_content_under_the_same_file_name_is_new_data(run_chain) -> None:
    run_chain()
    run_chain.data.write_text("xyz")
    result, statuses = run_chain()
    assert statuses == {"produce": "SUCCESS", "consume": "SUCCESS"}
    assert result.steps[-1].summary["text"] == "xyz!"


def test_a_failed_step_is_not_stored(run_chain) -> None:
    failed, statuses = run_chain(fail=True)
    assert failed.error and statuses["consume"] == "FAILURE"
    _, statuses = run_chain(fail=True)
    assert statuses == {"produce": "CACHED", "consume": "FAILURE"}  # ran again, failed again


def test_changed_code_is_a_new_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    executor_input = {"inputs": {"parameterValues": {"epochs": 3}}}
    before = StepCache.open(tmp_path / "cache").key("train", "def train(): ...", executor_input)
    monkeypatch.setattr(cache_module, "LIBRARIES", ("tensorflow", "a-library-since-installed"))
    upgraded = StepCache.open(tmp_path / "cache").key("train", "def train(): ...",
                                                      executor_input)
    monkeypatch.setattr(cache_module.importlib.metadata, "version", lambda name: "9.9")
    edited = StepCache.open(tmp_path / "cache")
    assert len({before, upgraded, edited.key("train", "def train(): ...", executor_input)}) == 3


def test_push_is_never_cached(tmp_path: Path) -> None:
    cache = StepCache.open(tmp_path / "cache")
    assert cache.key("push", "def push(): ...", {"inputs": {}}) is None


def test_content_hash_sees_names_and_bytes(tmp_path: Path) -> None:
    folder = tmp_path / "artifact"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.bin").write_bytes(b"1")
    first = content_hash(folder)
    (folder / "sub" / "a.bin").rename(folder / "sub" / "b.bin")
    renamed = content_hash(folder)
    (folder / "sub" / "b.bin").write_bytes(b"2")
    assert len({first, renamed, content_hash(folder)}) == 3


def test_a_cache_folder_others_may_change_is_refused(tmp_path: Path) -> None:
    """Another account able to write there, or to swap the folder for its own through a parent
    it may write to, could plant the model that push then signs."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with pytest.raises(InputError, match="only you can change"):
        StepCache.open(shared)
    with pytest.raises(InputError, match="can be changed by another account"):
        StepCache.open(shared / "mine")
    os.chmod(shared, 0o1777)  # sticky, as /tmp: others cannot rename what is ours
    assert StepCache.open(shared / "mine")
    private = StepCache.open(tmp_path / "new")
    assert (private.root.stat().st_mode & 0o777) == 0o700


def test_a_cache_path_that_is_a_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    with pytest.raises(InputError, match="cannot be the step cache"):
        StepCache.open(tmp_path / "afile" / "cache")


def test_an_output_edited_in_its_run_folder_changes_neither_the_cache_nor_another_run(
        run_chain) -> None:
    """The cache holds copies: a file curated where it lies stays the user's edit alone."""
    first, _ = run_chain()
    second, _ = run_chain()
    rows = next(first.run_dir.rglob("rows"))
    with open(rows, "r+") as handle:  # in place, as an editor without a backup copy writes
        handle.write("XYZ")
    third, statuses = run_chain()
    assert statuses == {"produce": "CACHED", "consume": "CACHED"}
    assert next(second.run_dir.rglob("rows")).read_text() == "abc"
    assert next(third.run_dir.rglob("rows")).read_text() == "abc"


def test_an_entry_changed_in_the_cache_is_dropped_and_the_step_runs(run_chain,
                                                                   tmp_path: Path) -> None:
    run_chain()
    for stored in (tmp_path / "cache").rglob("rows"):
        stored.write_text("planted")
    result, statuses = run_chain()
    assert statuses == {"produce": "SUCCESS", "consume": "CACHED"}
    assert next(result.run_dir.rglob("rows")).read_text() == "abc"


def test_a_damaged_entry_is_a_miss_not_an_error(run_chain, tmp_path: Path) -> None:
    run_chain()
    for output in (tmp_path / "cache").glob("*/executor_output.json"):
        output.unlink()
    for meta in (tmp_path / "cache").glob("*/entry.json"):
        meta.write_text("{not json")
        break
    result, statuses = run_chain()
    assert not result.error and statuses == {"produce": "SUCCESS", "consume": "SUCCESS"}
    _, statuses = run_chain()  # stored anew
    assert statuses == {"produce": "CACHED", "consume": "CACHED"}


def test_a_new_file_in_a_linked_folder_or_a_new_empty_folder_is_new_data(tmp_path: Path) -> None:
    """Ingest reads class folders through symbolic links and fails on an empty one: the key
    sees what ingest sees."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.png").write_bytes(b"1")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "dog").symlink_to(elsewhere)
    (photos / "loop").symlink_to(photos)  # a link loop ends
    first = content_hash(photos)
    (elsewhere / "b.png").write_bytes(b"2")
    more = content_hash(photos)
    (photos / "bird").mkdir()
    assert len({first, more, content_hash(photos)}) == 3


def test_a_fifo_named_as_data_is_not_cached_and_never_read(tmp_path: Path) -> None:
    fifo = tmp_path / "data.csv"
    os.mkfifo(fifo)
    cache = StepCache.open(tmp_path / "cache")
    assert cache.key("ingest", "def ingest(): ...",
                     {"inputs": {"parameterValues": {"data_path": str(fifo)}}}) is None


def test_only_parameters_that_name_files_are_read(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A label called `target` beside a build folder of that name is a column name."""
    (tmp_path / "target").mkdir()
    monkeypatch.chdir(tmp_path)
    cache = StepCache.open(tmp_path / "cache")
    key = cache.key("ingest", "src", {"inputs": {"parameterValues": {"label": "target"}}})
    (tmp_path / "target" / "big.bin").write_bytes(b"x")
    assert cache.key("ingest", "src", {"inputs": {"parameterValues": {"label": "target"}}}) == key


def test_every_path_parameter_of_the_steps_is_read_by_content() -> None:
    import dataclasses

    from edgeship.components.evaluate.executor import EvaluateParams
    from edgeship.components.ingest.executor import IngestParams
    from edgeship.components.quantize.executor import QuantizeParams
    from edgeship.components.train.executor import TrainParams
    from edgeship.components.validate.executor import ValidateParams

    named = {f.name for params in (IngestParams, ValidateParams, TrainParams, EvaluateParams,
                                   QuantizeParams)
             for f in dataclasses.fields(params)
             if f.name.endswith(("_path", "_file", "_dir"))}
    assert named <= cache_module.PATH_PARAMETERS


def test_metadata_cannot_pose_as_the_run_folder() -> None:
    run = "/runs/one"
    assert cache_module._placed({"a": "%r/x"}, run) != cache_module._placed({"a": f"{run}/x"}, run)
    assert cache_module._placed({"a": f"{run}/x"}, run) == cache_module._placed(
        {"a": "/runs/two/x"}, "/runs/two")
