"""Each step's parameters are declared once (a ``StepParams`` dataclass); the KFP component's
signature, its compiled ``component.yaml``, its README table and every pipeline that passes them
agree with that declaration: names, types and defaults."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from edgeship.components.evaluate.executor import EvaluateParams
from edgeship.components.ingest.executor import IngestParams
from edgeship.components.quantize.executor import QuantizeParams
from edgeship.components.train.executor import TrainParams
from edgeship.components.validate.executor import ValidateParams
from edgeship.edge_pusher.push import PushParams
from tests.helpers import REPO

# step -> (declaration, component module, folder holding component.yaml and README.md)
STEPS = {
    "ingest": (IngestParams, "edgeship.components.ingest.component", REPO / "components/ingest"),
    "validate": (ValidateParams, "edgeship.components.validate.component",
                 REPO / "components/validate"),
    "train": (TrainParams, "edgeship.components.train.component", REPO / "components/train"),
    "evaluate": (EvaluateParams, "edgeship.components.evaluate.component",
                 REPO / "components/evaluate"),
    "quantize": (QuantizeParams, "edgeship.components.quantize.component",
                 REPO / "components/quantize"),
    "push": (PushParams, "edgeship.edge_pusher.component", REPO / "edge_pusher"),
}
KFP_TYPES = {"str": "STRING", "int": "NUMBER_INTEGER", "float": "NUMBER_DOUBLE",
             "bool": "BOOLEAN", "list": "LIST", "dict": "STRUCT"}


def declared(params: type) -> dict[str, tuple[str, Any]]:
    """name -> (base type name, default or MISSING), in declaration order."""
    defaults = params.defaults()
    out = {}
    for field in dataclasses.fields(params):
        base = re.match(r"\w+", str(field.type)).group(0)  # "list[str]" -> "list"
        out[field.name] = (base, defaults.get(field.name, dataclasses.MISSING))
    return out


def component_signature(module: str, step: str) -> dict[str, tuple[str, Any]]:
    import importlib

    fn = getattr(importlib.import_module(module), step).python_func
    out = {}
    for name, p in inspect.signature(fn).parameters.items():
        if not isinstance(p.annotation, type):  # Input[...] / Output[...]: artifacts
            continue
        default = dataclasses.MISSING if p.default is inspect.Parameter.empty else p.default
        out[name] = (p.annotation.__name__, default)
    return out


def yaml_parameters(folder: Path) -> dict[str, tuple[str, Any]]:
    spec = yaml.safe_load((folder / "component.yaml").read_text())
    params = spec["root"]["inputDefinitions"]["parameters"]
    return {name: (d["parameterType"], d.get("defaultValue", dataclasses.MISSING))
            for name, d in params.items()}


def readme_parameters(folder: Path) -> dict[str, tuple[str, Any]]:
    text = (folder / "README.md").read_text()
    section = text.split("## Parameters", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        default = dataclasses.MISSING if cells[2] == "—" else ast.literal_eval(cells[2].strip("`"))
        rows[cells[0].strip("`")] = (cells[1].strip("`"), default)
    return rows


@pytest.mark.parametrize("step", STEPS)
def test_the_component_signature_is_the_declaration(step: str) -> None:
    params, module, _ = STEPS[step]
    assert component_signature(module, step) == declared(params)


@pytest.mark.parametrize("step", STEPS)
def test_component_yaml_carries_the_declaration(step: str) -> None:
    params, _, folder = STEPS[step]
    want = {name: (KFP_TYPES[kind], default) for name, (kind, default) in declared(params).items()}
    got = yaml_parameters(folder)
    assert list(got) == sorted(want)  # KFP sorts them
    for name, (kind, default) in want.items():
        assert got[name][0] == kind, name
        if default is dataclasses.MISSING:
            assert got[name][1] is dataclasses.MISSING, name
        else:  # KFP writes every number as a float
            assert got[name][1] == default and type(got[name][1]) in (type(default), float), name


@pytest.mark.parametrize("step", STEPS)
def test_the_readme_table_lists_the_declaration(step: str) -> None:
    params, _, folder = STEPS[step]
    assert readme_parameters(folder) == declared(params)


def test_pipeline_parameters_are_step_parameters_of_the_same_type() -> None:
    """A pipeline passes its parameters on by name: no renaming, no translation between layers.
    Its defaults are the step's, or the pipeline's own choice for its data."""
    from edgeship.pipelines.registry import PIPELINES

    steps = {}
    for params, _, _ in STEPS.values():
        for name, (kind, _) in declared(params).items():
            steps.setdefault(name, set()).add(kind)
    for pipeline, fn in PIPELINES.items():
        for name, p in inspect.signature(fn.pipeline_func).parameters.items():
            assert name in steps, f"{pipeline}: {name} is no step's parameter"
            assert steps[name] == {p.annotation.__name__}, f"{pipeline}: {name}"


ALIASES = {"Ingest": IngestParams, "Validate": ValidateParams, "Train": TrainParams,
           "Evaluate": EvaluateParams, "Quantize": QuantizeParams, "Push": PushParams}


@pytest.mark.parametrize("pipeline", ["sensor", "vision", "tabular"])
def test_a_pipeline_writes_a_step_default_by_reference_and_only_its_own_as_literals(pipeline):
    """`window: int = Ingest.window`, never `= 128`: a step's default lives in its declaration
    alone; a literal in a pipeline's signature is that pipeline's own choice and must differ."""
    fn = ast.parse((REPO / "pipelines" / f"{pipeline}.py").read_text()).body
    (definition,) = [d for d in fn if isinstance(d, ast.FunctionDef)]
    args = definition.args.args
    defaults = dict(zip((a.arg for a in args[len(args) - len(definition.args.defaults):]),
                        definition.args.defaults, strict=True))
    step_default = {}
    for params in ALIASES.values():
        step_default.update({k: v for k, v in params.defaults().items() if k not in step_default})
    for name, node in defaults.items():
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in ALIASES:
            assert node.attr == name, f"{pipeline}: {name} takes {node.value.id}.{node.attr}"
            assert name in ALIASES[node.value.id].names(), f"{pipeline}: {name}"
        elif isinstance(node, ast.Constant):
            assert step_default.get(name, dataclasses.MISSING) != node.value, (
                f"{pipeline}: {name}={node.value!r} is the step's default; write it by reference")


def test_the_pipeline_parameter_table_names_real_parameters() -> None:
    from edgeship.pipelines.registry import PIPELINES

    table = (REPO / "docs" / "pipelines.md").read_text().split("| parameter | pipelines |")[1]
    named = set(re.findall(r"`(\w+)`", table.split("\n\n")[0]))
    every = {name for fn in PIPELINES.values()
             for name in inspect.signature(fn.pipeline_func).parameters}
    assert named and named <= every, named - every


def test_a_step_refuses_unknown_and_bad_parameters_before_any_work(tmp_path) -> None:
    from edgeship.components.train.executor import run_train
    from edgeship.errors import InputError

    with pytest.raises(InputError, match=r"unknown parameter\(s\) epoch \(known: epochs,"):
        run_train(str(tmp_path / "nope"), str(tmp_path / "out"), epoch=3)
    with pytest.raises(InputError, match="batch_size: -1, must be a positive integer, or 0"):
        TrainParams(batch_size=-1)
    with pytest.raises(InputError, match=r"max_steps: 10, must be an integer >= min_steps \(500\)"):
        TrainParams(max_steps=10)
    assert TrainParams.build(TrainParams(epochs=5), seed=1) == TrainParams(epochs=5, seed=1)
    assert not (tmp_path / "out").exists()
