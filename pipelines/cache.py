"""Step caching for local runs: a step whose inputs, parameters and code are unchanged is reused.

As in TFX and KFP, a step's result is a function of what it is given. The key of a step is a
SHA-256 over:

- the component's source (what kfp.local would run) and the function it names;
- its parameters; the parameters that name a file or folder (:data:`PATH_PARAMETERS`) also
  count by what is there: every file's name and bytes and every folder's name, empty ones too,
  through symbolic links (as ingest reads them), so an edited CSV or a new class folder is new
  data under the same name. A path that is neither a regular file nor a folder (a FIFO, a
  device) cannot be hashed without consuming it: such a step is not cached;
- the content of every input artifact, and its metadata (with the folder of the run that wrote
  it as a placeholder: restored outputs name their new folder);
- the code: every file of the installed ``edgeship`` package, Python's version and the versions
  of the libraries whose behaviour is the steps' (TensorFlow, TFDV, TFMA, numpy, ...), read
  when the cache is opened, so an edited executor or an upgraded converter never reuses a
  result of the code before.

Only a step that succeeded is stored, and ``push`` never is: publishing is a side effect, and a
run that reached push publishes (the repository then refuses or versions the build itself).

The cache holds copies, never links: a file edited in a run folder (a schema curated where it
lies) changes neither the cache nor another run. A hit copies the stored outputs into the new
task's folders, checks the copies against the digests recorded when they were stored (an entry
whose bytes changed since is dropped and the step runs), and writes the step's
``executor_output.json`` with the stored run's folders replaced by the new ones: everything
downstream reads the same layout as after a real execution. A damaged entry is a miss, never an
error.

Where: ``$EDGESHIP_CACHE_DIR``, else ``$XDG_CACHE_HOME/edgeship/steps``, else
``~/.cache/edgeship/steps``. It must be the user's own: the folder (mode 0700 when created) and
every entry owned by this account and writable by no other, and no folder above it writable by
another account without the sticky bit (which would let it swap the folder for one of its own).
Otherwise a planted entry would become the model ``push`` signs. Entries are written to a
temporary folder and renamed into place, so an interrupted store leaves no half entry. Delete
the folder to empty the cache.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeship.errors import InputError

CACHE_DIR_ENV = "EDGESHIP_CACHE_DIR"
# Steps whose outputs are never reused: they act on the world beyond their output folders.
NEVER_CACHED = frozenset({"push"})
# Step parameters that name a file or folder the step reads (each step's Params declare them).
PATH_PARAMETERS = frozenset({"data_path", "schema_path", "module_file", "baseline_model_path",
                             "baseline_statistics_path"})
# Libraries whose upgrade can change a step's output for the same input.
LIBRARIES = ("tensorflow", "tf-keras", "keras", "tensorflow-data-validation",
             "tensorflow-model-analysis", "tfx-bsl", "apache-beam", "numpy", "pyarrow",
             "ai-edge-litert", "kfp", "scikit-learn", "pillow", "protobuf")
# What the package's behaviour is made of (not __pycache__, which a run itself writes).
_CODE_SUFFIXES = frozenset({".py", ".yaml", ".csv", ".md", ".json"})
_ENTRY_OUTPUT = "executor_output.json"
_ENTRY_META = "entry.json"


class Unhashable(Exception):
    """A path whose content cannot be read without consuming it (a FIFO, a device)."""


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgeship" / "steps"


@dataclass
class StepCache:
    """The cache of one run: where entries live, the code version, which steps it reused."""

    root: Path
    code: str
    reused: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, root: Path | None = None) -> StepCache:
        """The cache at ``root`` (default: :func:`default_cache_dir`), created if missing.

        Raises InputError when it is not a folder only this account can change."""
        root = (root or default_cache_dir()).resolve()
        try:
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as err:
            raise InputError(f"{root}: cannot be the step cache ({err.strerror}); set "
                             f"{CACHE_DIR_ENV} to a folder, or run with --no-cache") from None
        problem = _not_private(root)
        if problem:
            raise InputError(
                f"{root}: the step cache must be a folder only you can change ({problem}: "
                f"another account could plant the model that push signs); set "
                f"{CACHE_DIR_ENV} to another folder, or run with --no-cache")
        return cls(root, code_version())

    def key(self, function: str, source: str, executor_input: Mapping[str, Any]) -> str | None:
        """The step's key, or None for a step that is not cached (push; unhashable input)."""
        if function in NEVER_CACHED:
            return None
        inputs: Mapping[str, Any] = executor_input.get("inputs", {})
        parameters: Mapping[str, Any] = inputs.get("parameterValues", {})
        try:
            artifacts = {
                name: [{"metadata": _placed(item.get("metadata", {}), _run_root(item["uri"])),
                        "content": content_hash(item["uri"])}
                       for item in entry.get("artifacts", [])]
                for name, entry in sorted(inputs.get("artifacts", {}).items())
            }
            files = {name: content_hash(value) for name, value in sorted(parameters.items())
                     if name in PATH_PARAMETERS and isinstance(value, str)
                     and value and "://" not in value and not value.startswith("builtin:")}
        except (Unhashable, OSError):
            return None
        described = {"function": function, "source": source, "parameters": parameters,
                     "files": files, "artifacts": artifacts, "code": self.code}
        text = json.dumps(described, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def restore(self, key: str, executor_input: Mapping[str, Any]) -> bool:
        """Put the stored outputs where this task's outputs go; False when the cache has no
        sound entry for ``key`` (missing, damaged, changed since stored, not ours)."""
        entry = self.root / key
        if not (entry / _ENTRY_META).is_file() or _not_private(self.root) or _not_ours(entry):
            return False
        outputs = _output_uris(executor_input)
        output_file = Path(executor_input["outputs"]["outputFile"])
        try:
            meta = json.loads((entry / _ENTRY_META).read_text())
            stored: dict[str, str] = meta["outputs"]
            digests: dict[str, str] = meta["content"]
            text = (entry / _ENTRY_OUTPUT).read_text()
            if set(stored) != set(outputs) or set(digests) != set(outputs):
                return False
            for name, uri in outputs.items():
                target = Path(uri)
                if digests[name] == "missing":  # the step wrote nothing there
                    text = _replace(text, stored[name], uri)
                    continue
                _copy(entry / "artifacts" / name, target)
                if content_hash(target) != digests[name]:  # changed since it was stored
                    _remove(target)
                    raise ValueError(f"{name}: not what was stored")
                text = _replace(text, stored[name], uri)
            # anything else that named a folder of the stored run (an artifact's metadata, a
            # path in the step's summary) names the same folder of this run (same layout)
            text = _replace(text, meta["run_root"], str(output_file.parent.parent))
        except (OSError, ValueError, KeyError, TypeError, Unhashable):
            shutil.rmtree(entry, ignore_errors=True)  # damaged: the step runs, and stores anew
            return False
        output_file.parent.mkdir(parents=True, exist_ok=True)
        output_file.write_text(text)
        return True

    def store(self, key: str, executor_input: Mapping[str, Any]) -> None:
        """Keep a copy of a successful step's outputs under ``key`` (a second store is a no-op;
        one that cannot be completed leaves nothing)."""
        entry = self.root / key
        output_file = Path(executor_input["outputs"]["outputFile"])
        if (entry / _ENTRY_META).is_file() or not output_file.is_file():
            return
        shutil.rmtree(entry, ignore_errors=True)  # a folder without entry.json is no entry
        outputs = _output_uris(executor_input)
        staging = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=self.root))
        try:
            for name, uri in outputs.items():
                if Path(uri).exists():
                    _copy(Path(uri), staging / "artifacts" / name)
            digests = {name: content_hash(staging / "artifacts" / name) for name in outputs}
            shutil.copyfile(output_file, staging / _ENTRY_OUTPUT)
            (staging / _ENTRY_META).write_text(json.dumps(
                {"outputs": outputs, "run_root": str(output_file.parent.parent),
                 "content": digests}))
            os.rename(staging, entry)  # whole or not at all
        except (OSError, Unhashable):
            pass  # another run stored it first, or no room: the run goes on uncached
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # also on Ctrl-C


def _not_private(root: Path) -> str:
    """Why another account could change what ``root`` holds ('' when none can)."""
    info = root.stat()
    if info.st_uid != os.getuid():
        return f"owned by uid {info.st_uid}"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"mode {stat.S_IMODE(info.st_mode):o}"
    for parent in root.parents:
        info = parent.stat()
        writable = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if info.st_uid not in (0, os.getuid()) or (writable and not info.st_mode & stat.S_ISVTX):
            return f"{parent} can be changed by another account"
    return ""


def _not_ours(entry: Path) -> bool:
    info = entry.lstat()
    return (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid()
            or bool(info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)))


def _run_root(artifact_uri: str) -> str:
    """The run's folder in kfp.local's layout: <pipeline root>/<run>/<task>/<output name>."""
    return str(Path(artifact_uri).parent.parent)


def _placed(metadata: object, run_root: str) -> str:
    """Metadata as JSON, its run's folder written as a placeholder: the same outputs restored
    into another run's folder describe the same thing. ('%' is escaped first, so no text of the
    metadata can read as the placeholder.)"""
    text = json.dumps(metadata, sort_keys=True).replace("%", "%p")
    return _replace(text, run_root.replace("%", "%p"), "%r")


def _replace(json_text: str, old: str, new: str) -> str:
    """``old`` replaced by ``new`` wherever it appears inside the JSON document's strings."""
    return json_text.replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1])


def _output_uris(executor_input: Mapping[str, Any]) -> dict[str, str]:
    artifacts: Mapping[str, Any] = executor_input.get("outputs", {}).get("artifacts", {})
    return {name: entry["artifacts"][0]["uri"] for name, entry in sorted(artifacts.items())
            if entry.get("artifacts")}


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _walk(root: Path) -> Iterator[tuple[str, Path | None]]:
    """(relative name, file or None for a folder) under ``root``, sorted, through symbolic
    links to folders (each real folder once: a link loop ends), as a reader of the folder sees
    it."""
    seen: set[tuple[int, int]] = set()
    for folder, folders, files in os.walk(root, followlinks=True):
        info = os.stat(folder)
        if (info.st_dev, info.st_ino) in seen:
            folders[:] = []
            continue
        seen.add((info.st_dev, info.st_ino))
        folders.sort()
        relative = Path(folder).relative_to(root).as_posix()
        yield relative, None
        for name in sorted(files):
            yield f"{relative}/{name}", Path(folder) / name


def content_hash(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, or of a folder's tree: every folder's name (empty ones too)
    and every file's name and bytes. Raises :class:`Unhashable` for anything else (a FIFO, a
    device, a socket), which cannot be read without being consumed."""
    root = Path(path)
    if not root.exists():
        return "missing"
    if root.is_file():
        return _hash_file(root)
    if not root.is_dir():
        raise Unhashable(str(root))
    digest = hashlib.sha256()
    for name, file in _walk(root):
        if file is None:
            digest.update(f"d\0{name}\0".encode())
        elif file.is_file():
            digest.update(f"f\0{name}\0{_hash_file(file)}\0".encode())
        elif file.exists() or file.is_symlink():
            raise Unhashable(str(file))  # not a regular file, or a broken link
    return digest.hexdigest()


def code_version() -> str:
    """The content of the installed edgeship package, Python's version and the versions of the
    libraries in :data:`LIBRARIES`: any change is a new version."""
    import edgeship

    digest = hashlib.sha256(sys.version.encode())
    for library in LIBRARIES:
        try:
            digest.update(f"{library}=={importlib.metadata.version(library)}\0".encode())
        except importlib.metadata.PackageNotFoundError:
            digest.update(f"{library} absent\0".encode())
    for folder in sorted({str(Path(p).resolve()) for p in edgeship.__path__}):
        root = Path(folder)
        for file in sorted(root.rglob("*")):
            if (file.suffix in _CODE_SUFFIXES and "__pycache__" not in file.parts
                    and file.is_file()):
                digest.update(f"{file.relative_to(root).as_posix()}\0".encode())
                digest.update(_hash_file(file).encode())
    return digest.hexdigest()


def _copy(source: Path, target: Path) -> None:
    """A copy of ``source`` (file or folder) at ``target``, replacing what was there."""
    if target.exists() or target.is_symlink():
        _remove(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, symlinks=False)
    elif source.is_file():
        shutil.copyfile(source, target)
    else:
        raise Unhashable(str(source))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
