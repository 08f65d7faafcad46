"""The component image's Dockerfile: hadolint-clean, pinned base, multi-stage with nothing but
the venv carried into a non-root runtime, and the key-folder links pipelines/cluster.py expects.
"""

import re
import subprocess

from edgeship._version import VERSION
from edgeship.pipelines import cluster
from tests.helpers import REPO
from tests.helpers.tools import tool
from tests.helpers.wheel import package_dirs

DOCKERFILE = REPO / "Dockerfile"


def _stages() -> dict[str, list[str]]:
    """Instructions per stage (line continuations joined, comments dropped)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    stages: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            current = line.split()[-1] if " AS " in line.upper() else f"stage{len(stages)}"
            stages[current] = [line]
        elif current:
            stages[current].append(line)
    return stages


def test_hadolint_is_clean():
    hadolint = tool("hadolint")
    proc = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_base_is_python_311_slim_pinned_by_digest():
    stages = _stages()
    (base_from,) = [s[0] for s in stages.values() if "@sha256:" in s[0]]
    assert re.fullmatch(r"FROM python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64} AS base",
                        base_from)
    others = [s[0] for name, s in stages.items() if "@sha256:" not in s[0]]
    assert all(f.startswith("FROM base AS ") for f in others), others


def test_runtime_stage_carries_only_the_venv_and_runs_as_non_root():
    runtime = _stages()["runtime"]
    text = "\n".join(runtime)
    assert "COPY --from=build /opt/venv /opt/venv" in runtime
    assert not re.search(r"\bpip install\b|\buv\b|apt-get install|gcc|build-essential", text)
    assert "pip uninstall" in text  # and the base's pip goes too
    (user,) = [i for i in runtime if i.startswith("USER ")]
    uid = user.split()[1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 10000
    assert runtime[-1].startswith("CMD ")  # KFP overrides the command; no ENTRYPOINT to fight


def test_build_installs_from_the_lock_and_the_project():
    build = "\n".join(_stages()["build"])
    assert "COPY requirements.lock" in build
    install = "uv pip install --python /opt/venv/bin/python -c requirements.lock '.[pipelines]'"
    assert install in build
    assert "-e " not in build, "the image must carry the package, not an editable link"


def test_image_links_make_a_keys_folder_for_the_cluster():
    runtime = "\n".join(_stages()["runtime"])
    assert f"ln -s {cluster.ROOT_DIR}/root.json {cluster.KEYS_DIR}/root.json" in runtime
    assert f"ln -s {cluster.ROOT_DIR} {cluster.KEYS_DIR}/root_history" in runtime


def test_build_context_is_only_what_the_image_needs():
    lines = [
        line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "**"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    folders = {folder.name for folder in package_dirs().values()}
    assert allowed == {"requirements.lock", "pyproject.toml", "README.md"} | folders
    copied = {
        src.rstrip("/")
        for args in re.findall(r"^COPY (?!--from)(.+)$", DOCKERFILE.read_text(), re.MULTILINE)
        for src in args.split()[:-1]
    }
    assert copied and copied <= allowed


def test_default_image_name_is_package_version(monkeypatch):
    import importlib

    import edgeship.image as image

    monkeypatch.delenv("EDGESHIP_IMAGE", raising=False)
    assert importlib.reload(image).IMAGE == f"edgeship:{VERSION}"
    assert f"ARG VERSION={VERSION}" in DOCKERFILE.read_text()
    importlib.reload(image)
