"""The Python in the docs stays true.

Every ``python`` snippet of the README, ``docs/`` and the step READMEs compiles, uses only
names it imports or defines (ruff's undefined-name check), and imports what exists; the KFP
pipelines they define compile; and the executor snippets of the step READMEs, run one after
the other as a user would, take the bundled recordings to a signed model that a device
activates.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.helpers.ota import subprocess_env

DOCS = sorted([REPO / "README.md", *REPO.glob("docs/*.md"), *REPO.glob("components/*/README.md"),
               REPO / "edge_pusher" / "README.md"])
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)

#: Executor snippets that make one run, in the order a user follows them (doc#snippet).
CHAIN = ["components/ingest/README.md#1", "components/validate/README.md#1",
         "components/train/README.md#2", "components/evaluate/README.md#1",
         "components/quantize/README.md#1", "edge_pusher/README.md#2"]


def _snippets() -> dict[str, str]:
    found = {}
    for doc in DOCS:
        for i, match in enumerate(FENCE.finditer(doc.read_text()), start=1):
            found[f"{doc.relative_to(REPO)}#{i}"] = match.group(1)
    return found


SNIPPETS = _snippets()


def _run(script: str, data: object, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``script`` in ``cwd`` in a new Python, with ``data`` as JSON in the file
    ``sys.argv[1]`` names."""
    path = cwd / "snippets.json"
    path.write_text(json.dumps(data))
    return subprocess.run([sys.executable, "-c", script, str(path)], cwd=cwd,
                          env=subprocess_env(), capture_output=True, text=True, timeout=timeout)


IMPORT_ALL = """
import json, sys
failed = []
for name, statement in json.load(open(sys.argv[1])):
    try:
        exec(statement, {})
    except Exception as e:
        failed.append(f"{name}: {statement}: {e!r}")
print(json.dumps(failed))
"""

COMPILE_PIPELINES = """
import importlib.util, json, os, sys
from kfp import compiler
compiled = []
for i, (name, code) in enumerate(json.load(open(sys.argv[1])).items()):
    # a module file, as a user has it: KFP reads a lightweight component's source with inspect
    path = os.path.join(os.path.dirname(sys.argv[1]), f"snippet_{i}.py")
    with open(path, "w") as out:
        out.write(code)
    spec = importlib.util.spec_from_file_location(f"snippet_{i}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for value in list(vars(module).values()):
        if type(value).__name__ == "GraphComponent":
            compiler.Compiler().compile(value, os.path.join(os.path.dirname(sys.argv[1]), "p.yaml"))
            compiled.append(name)
print(json.dumps(compiled))
"""

RUN_IN_ORDER = """
import json, sys
for name, code in json.load(open(sys.argv[1])):
    print("=== " + name, flush=True)
    exec(compile(code, name, "exec"), {"__name__": "__main__"})
"""


def test_the_chain_names_snippets_that_exist() -> None:
    assert set(CHAIN) <= set(SNIPPETS) and len(SNIPPETS) >= 15


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_a_snippet_compiles_and_uses_only_names_it_has(name: str, tmp_path: Path) -> None:
    code = SNIPPETS[name]
    compile(code, name, "exec")
    path = tmp_path / "snippet.py"
    path.write_text(code)
    ruff = subprocess.run([str(Path(sys.executable).parent / "ruff"), "check", "--isolated",
                           "--no-cache", "--select", "F821,F822,F823", "--output-format",
                           "concise", str(path)], capture_output=True, text=True)
    assert ruff.returncode == 0, f"{name}:\n{ruff.stdout}"


def imports(tfx: bool) -> list[tuple[str, str]]:
    """(snippet, import statement) of every snippet: those of TFX's environment, or the rest."""
    found = [(name, ast.unparse(node)) for name, code in SNIPPETS.items()
             for node in ast.walk(ast.parse(code))
             if isinstance(node, ast.Import | ast.ImportFrom)]
    return [(name, statement) for name, statement in found
            if ("tfx" in statement.split()[1].split(".")) == tfx]


def test_every_import_in_the_docs_exists(tmp_path: Path) -> None:
    """One process imports what every snippet imports (TFDV included): a moved or renamed
    function fails here with the snippet's name. (Imports from TFX's environment are checked
    there, by tests/tfx/test_docs.py.)"""
    statements = imports(tfx=False)
    proc = _run(IMPORT_ALL, statements, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == []


def test_the_pipelines_in_the_docs_compile(tmp_path: Path) -> None:
    """Every ``@dsl.pipeline`` a snippet defines compiles with KFP's compiler: component
    inputs, outputs and types are as the snippet uses them."""
    with_pipelines = {n: c for n, c in SNIPPETS.items() if "@dsl.pipeline" in c}
    assert len(with_pipelines) >= 5
    proc = _run(COMPILE_PIPELINES, with_pipelines, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(json.loads(proc.stdout.splitlines()[-1])) == sorted(with_pipelines)


@pytest.mark.slow
def test_the_step_readmes_make_a_run_that_a_device_takes(tmp_path: Path) -> None:
    """The executor snippets, in order, in one folder: ingest, validate, train, evaluate,
    quantize, push; then a device polls the bucket."""
    from edgeship.edge_pusher import keys

    keys.init_keys(tmp_path / "keys")  # what `edgeship keys init keys/` makes
    proc = _run(RUN_IN_ORDER, [(name, SNIPPETS[name]) for name in CHAIN], cwd=tmp_path,
                timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"pushed v1 to file://{tmp_path / 'bucket'}: models/sensor/stable/1/cpu/model.tflite" \
        in proc.stdout

    from edgeship.device import Agent

    agent = Agent(str(tmp_path / "device"), str(tmp_path / "bucket"), device_id="dev-1",
                  trusted_root=str(tmp_path / "keys" / "root_history" / "1.root.json"))
    assert agent.poll_once().action == "updated"
    assert agent.status()["active"]["verified"] is True


def test_the_bundled_sensor_csv_is_the_size_docs_data_says(tmp_path: Path) -> None:
    from edgeship.components.ingest.datasets import materialize

    said = re.search(r"~([\d.]+) MB CSV", (REPO / "docs" / "data.md").read_text())
    assert said, "docs/data.md no longer gives the sensor CSV's size"
    size = Path(materialize("sensor", str(tmp_path))).stat().st_size / 1e6
    assert abs(size - float(said.group(1))) < 0.05, f"{size:.2f} MB"


@pytest.mark.slow
def test_the_train_readmes_module_file_fits_every_data_kind(tmp_path: Path) -> None:
    """The README's own ``build_model`` on sensor windows and images (table rows: the train
    tests' own module file)."""
    from tests.helpers.builders import image_examples, sensor_examples

    module = tmp_path / "my_model.py"
    module.write_text(SNIPPETS["components/train/README.md#1"])
    made = {"sensor": sensor_examples, "image": image_examples}
    script = """
import json, sys
from edgeship.components.train.executor import run_train
runs = json.load(open(sys.argv[1]))
print(json.dumps({kind: run_train(examples, model, epochs=1, module_file=module, min_steps=1,
                                  max_steps=4)["parameters"]
                  for kind, (examples, model, module) in runs.items()}))
"""
    runs = {kind: (str(make(tmp_path / kind)), str(tmp_path / f"model-{kind}"), str(module))
            for kind, make in made.items()}
    proc = _run(script, runs, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert set(json.loads(proc.stdout.splitlines()[-1])) == set(made)
