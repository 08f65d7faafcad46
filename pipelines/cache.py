"""Step caching for local runs: a step whose inputs, parameters and code are unchanged is reused.

As in TFX and KFP, a step's result is a function of what it is given. The key of a step is a
SHA-256 over:

- the component's source (what kfp.local would run) and the function it names;
- its parameters; a string parameter that names an existing file or folder (``data_path``,
  ``schema_path``, ``module_file``) also counts by the content found there, so an edited CSV is
  new data even under the same name;
- the content of every input artifact (file names and bytes), and its metadata (with the folder
  of the run that wrote it as a placeholder: restored outputs name their new folder);
- the code version: the content of every file of the installed ``edgeship`` package, so an
  edited executor never reuses a result of the code before.

Only a step that succeeded is stored, and ``push`` never is: publishing is a side effect, and a
run that reached push publishes (the repository then refuses or versions the build itself).

A hit copies the stored outputs into the new task's folders (hard links where the file system
allows, so a large Examples artifact costs no second copy; an entry whose bytes changed since it
was stored, through a file edited in a run folder it shares them with, is dropped) and writes
the step's
``executor_output.json`` with the stored run's folders replaced by the new ones: everything
downstream reads the same layout as after a real execution.

Where: ``$EDGESHIP_CACHE_DIR``, else ``$XDG_CACHE_HOME/edgeship/steps``, else
``~/.cache/edgeship/steps``. The folder is the user's own (mode 0700, refused when another
account owns it or may write to it): a planted entry would otherwise become the model that
``push`` signs. Entries are written to a temporary folder and renamed into place, so a run
interrupted mid-store leaves no half entry. Delete the folder to empty the cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeship.errors import InputError

CACHE_DIR_ENV = "EDGESHIP_CACHE_DIR"
# Steps whose outputs are never reused: they act on the world beyond their output folders.
NEVER_CACHED = frozenset({"push"})
_ENTRY_OUTPUT = "executor_output.json"
_ENTRY_META = "entry.json"


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgeship" / "steps"


@dataclass
class StepCache:
    """The cache of one run: where entries live, and which steps it reused."""

    root: Path
    reused: list[str]

    @classmethod
    def open(cls, root: Path | None = None) -> StepCache:
        root = (root or default_cache_dir()).resolve()
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = root.stat()
        if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise InputError(
                f"{root}: the step cache must be a folder only you can write to (another "
                f"account could plant the model that push signs); chmod 700 it, or set "
                f"{CACHE_DIR_ENV} to another folder, or run with --no-cache")
        return cls(root, [])

    def key(self, function: str, source: str, executor_input: Mapping[str, Any]) -> str | None:
        """The step's key, or None for a step that is never cached."""
        if function in NEVER_CACHED:
            return None
        inputs: Mapping[str, Any] = executor_input.get("inputs", {})
        parameters: Mapping[str, Any] = inputs.get("parameterValues", {})
        artifacts: dict[str, Any] = {}
        for name, entry in sorted(inputs.get("artifacts", {}).items()):
            artifacts[name] = [
                {"metadata": _placed(item.get("metadata", {}), _run_root(item["uri"])),
                 "content": content_hash(item["uri"])}
                for item in entry.get("artifacts", [])
            ]
        described = {
            "function": function,
            "source": source,
            "parameters": parameters,
            "files": {name: content_hash(value) for name, value in sorted(parameters.items())
                      if isinstance(value, str) and _is_local_path(value)},
            "artifacts": artifacts,
            "code": code_version(),
        }
        text = json.dumps(described, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def restore(self, key: str, executor_input: Mapping[str, Any]) -> bool:
        """Put the stored outputs where this task's outputs go; False when there are none."""
        entry = self.root / key
        if not (entry / _ENTRY_META).is_file():
            return False
        meta = json.loads((entry / _ENTRY_META).read_text())
        stored: dict[str, str] = meta["outputs"]
        outputs = _output_uris(executor_input)
        if set(stored) != set(outputs):
            return False
        # Hard links share their bytes with the run folders they came from and went to: a file
        # edited in place there (a schema curated where it lies) has changed the entry too, and
        # is not what the step wrote. Such an entry is dropped, never restored.
        if any(content_hash(entry / "artifacts" / name) != digest
               for name, digest in meta["content"].items()):
            shutil.rmtree(entry, ignore_errors=True)
            return False
        output_file = Path(executor_input["outputs"]["outputFile"])
        text = (entry / _ENTRY_OUTPUT).read_text()
        for name, uri in outputs.items():
            source = entry / "artifacts" / name
            target = Path(uri)
            if target.exists():
                _remove(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, copy_function=_link_or_copy)
            elif source.exists():
                _link_or_copy(str(source), str(target))
            text = _replace(text, stored[name], uri)
        # anything else that named a folder of the stored run (an artifact's metadata, a path
        # in the step's summary) names the same folder of this run, which has the same layout
        text = _replace(text, meta["run_root"], str(output_file.parent.parent))
        output_file.parent.mkdir(parents=True, exist_ok=True)
        output_file.write_text(text)
        return True

    def store(self, key: str, executor_input: Mapping[str, Any]) -> None:
        """Keep a successful step's outputs under ``key`` (once; a second store is a no-op)."""
        entry = self.root / key
        output_file = Path(executor_input["outputs"]["outputFile"])
        if entry.exists() or not output_file.is_file():
            return
        outputs = _output_uris(executor_input)
        staging = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=self.root))
        try:
            for name, uri in outputs.items():
                source, target = Path(uri), staging / "artifacts" / name
                target.parent.mkdir(parents=True, exist_ok=True)
                if source.is_dir():
                    shutil.copytree(source, target, copy_function=_link_or_copy)
                elif source.exists():
                    _link_or_copy(str(source), str(target))
            shutil.copyfile(output_file, staging / _ENTRY_OUTPUT)
            (staging / _ENTRY_META).write_text(json.dumps(
                {"outputs": outputs, "run_root": str(output_file.parent.parent),
                 "content": {name: content_hash(staging / "artifacts" / name)
                             for name in outputs}}))
            os.rename(staging, entry)  # whole or not at all
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another run stored it first, or no room


def _run_root(artifact_uri: str) -> str:
    """The run's folder in kfp.local's layout: <pipeline root>/<run>/<task>/<output name>."""
    return str(Path(artifact_uri).parent.parent)


def _placed(metadata: object, run_root: str) -> str:
    """Metadata as JSON, its run's folder written as a placeholder: the same outputs restored
    into another run's folder describe the same thing."""
    return _replace(json.dumps(metadata, sort_keys=True), run_root, "{run}")


def _replace(json_text: str, old: str, new: str) -> str:
    """``old`` replaced by ``new`` wherever it appears inside the JSON document's strings."""
    return json_text.replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1])


def _output_uris(executor_input: Mapping[str, Any]) -> dict[str, str]:
    artifacts: Mapping[str, Any] = executor_input.get("outputs", {}).get("artifacts", {})
    return {name: entry["artifacts"][0]["uri"] for name, entry in sorted(artifacts.items())
            if entry.get("artifacts")}


def _is_local_path(value: str) -> bool:
    return bool(value) and "://" not in value and not value.startswith("builtin:") \
        and os.path.exists(value)


@functools.lru_cache(maxsize=256)
def _hash_file(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_hash(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, or of a folder's relative file names and their bytes."""
    root = Path(path)
    if not root.exists():
        return "missing"
    files: Iterable[Path] = [root] if root.is_file() else sorted(
        p for p in root.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for file in files:
        info = file.stat()
        name = "" if file == root else file.relative_to(root).as_posix()
        digest.update(f"{name}\0{_hash_file(str(file), info.st_size, info.st_mtime_ns)}\0".encode())
    return digest.hexdigest()


# What the package's behaviour is made of (not __pycache__, which a run itself writes).
_CODE_SUFFIXES = frozenset({".py", ".yaml", ".csv", ".md", ".json"})


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The content of the installed edgeship package: any edit is a new version."""
    import edgeship

    digest = hashlib.sha256()
    for folder in sorted({str(Path(p).resolve()) for p in edgeship.__path__}):
        root = Path(folder)
        for file in sorted(root.rglob("*")):
            if (file.suffix in _CODE_SUFFIXES and "__pycache__" not in file.parts
                    and file.is_file()):
                info = file.stat()
                digest.update(f"{file.relative_to(root).as_posix()}\0".encode())
                digest.update(_hash_file(str(file), info.st_size, info.st_mtime_ns).encode())
    return digest.hexdigest()


def _link_or_copy(source: str, target: str) -> str:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
    return target


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
