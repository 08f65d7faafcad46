"""The steps' artifacts are typed: no input or output is a bare ``Artifact``; blessings,
statistics, schemas, anomalies, evaluations, training logs and pushes are their own KFP types
(``edgeship.artifact_types``), so a pipeline that wires one where another is expected does not
compile, and the types survive compiling, loading a component.yaml and a local run.

No ``from __future__ import annotations`` here: KFP reads the pipelines' annotations as types.
"""

from pathlib import Path

import pytest

from edgeship.components._compile import component_modules

# (component, input or output) -> schema title; every other artifact is one of KFP's own.
TYPED = {
    ("validate", "statistics"): "system.ExampleStatistics",
    ("validate", "schema"): "system.Schema",
    ("validate", "anomalies"): "system.ExampleAnomalies",
    ("evaluate", "blessing"): "system.ModelBlessing",
    ("evaluate", "evaluation"): "system.ModelEvaluation",
    ("quantize", "model_blessing"): "system.ModelBlessing",
    ("quantize", "blessing"): "system.ModelBlessing",
    ("push", "evaluate_blessing"): "system.ModelBlessing",
    ("push", "quantize_blessing"): "system.ModelBlessing",
    ("push", "pushed_model"): "system.PushedModel",
    ("train", "logs"): "system.ModelRun",
}


def _artifact_types(spec) -> dict[str, str]:
    """name -> schema title of a component spec's artifact inputs and outputs."""
    from kfp.dsl.structures import spec_type_is_parameter

    found = {}
    for io in (spec.inputs or {}, spec.outputs or {}):
        for name, item in io.items():
            if not spec_type_is_parameter(item.type):
                found[name] = item.type.split("@")[0]
    return found


@pytest.mark.parametrize("module,name,target", component_modules(),
                         ids=[c[1] for c in component_modules()])
def test_every_artifact_is_typed_in_the_component_and_its_yaml(module, name, target) -> None:
    import importlib

    from kfp import components

    for spec in (getattr(importlib.import_module(module), name).component_spec,
                 components.load_component_from_file(str(target)).component_spec):
        types = _artifact_types(spec)
        for artifact, title in types.items():
            if (name, artifact) in TYPED:
                assert title == TYPED[(name, artifact)], (name, artifact)
            else:  # a KFP type of its own: Dataset, Model, Metrics, Markdown, ...
                assert title not in ("system.Artifact", *TYPED.values()), (name, artifact)
        assert {a for c, a in TYPED if c == name} <= set(types)


def test_a_wrong_artifact_wired_into_a_typed_input_does_not_compile(tmp_path: Path) -> None:
    from kfp import compiler, dsl
    from kfp.dsl.types.type_utils import InconsistentTypeException

    from edgeship.components.quantize.component import quantize
    from edgeship.components.validate.component import validate

    with pytest.raises(InconsistentTypeException, match="model_blessing"):
        @dsl.pipeline(name="statistics-as-a-blessing")
        def wrong(examples_uri: str) -> None:
            examples = dsl.importer(artifact_uri=examples_uri, artifact_class=dsl.Dataset)
            checked = validate(examples=examples.output)
            model = dsl.importer(artifact_uri=examples_uri, artifact_class=dsl.Model)
            quantize(model=model.output, examples=examples.output,
                     model_blessing=checked.outputs["statistics"])

    # A bare Artifact still connects, as KFP allows (a blessing from outside the pipeline).
    @dsl.pipeline(name="imported-blessing")
    def imported(examples_uri: str, blessing_uri: str) -> None:
        examples = dsl.importer(artifact_uri=examples_uri, artifact_class=dsl.Dataset)
        model = dsl.importer(artifact_uri=examples_uri, artifact_class=dsl.Model)
        blessing = dsl.importer(artifact_uri=blessing_uri, artifact_class=dsl.Artifact)
        quantize(model=model.output, examples=examples.output, model_blessing=blessing.output)

    compiler.Compiler().compile(imported, str(tmp_path / "imported.yaml"))


def test_typed_artifacts_pass_between_steps_in_a_local_run(tmp_path: Path) -> None:
    """KFP writes the types' import into the component's command, so a step run as a process of
    its own (kfp.local, as ``edgeship run`` does) gets an instance of its output's type. Between
    steps kfp.local (2.13) keeps the folder but not the type (it rebuilds each output without
    the producer's class), so the next step sees a plain Artifact there; on a cluster the type
    travels in the artifact's schema title. edgeship's steps read only the folder."""
    from kfp import dsl, local

    from edgeship.artifact_types import ModelBlessing

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def bless(blessing: dsl.Output[ModelBlessing]) -> None:
        from pathlib import Path

        Path(blessing.path).mkdir(parents=True)
        (Path(blessing.path) / "BLESSED").write_text(
            f"{type(blessing).__name__} {blessing.schema_title}")

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def read(blessing: dsl.Input[ModelBlessing]) -> str:
        from pathlib import Path

        return "; ".join(f"{p.name}: {p.read_text()}" for p in Path(blessing.path).iterdir())

    @dsl.pipeline(name="typed-blessing")
    def typed() -> str:
        return read(blessing=bless().outputs["blessing"]).output

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path),
               raise_on_error=True)
    assert typed().output == "BLESSED: ModelBlessing system.ModelBlessing"


def test_each_type_is_named_as_the_tfx_components_type_for_the_same_folder() -> None:
    """The same step under TFX (``edgeship.tfx``) takes and makes TFX's standard artifact of the
    same name, so a folder is one kind of thing under either orchestrator."""
    import ast

    from edgeship import artifact_types
    from tests.helpers import REPO

    tree = ast.parse((REPO / "tfx_components" / "components.py").read_text())
    tfx_types = {node.attr for node in ast.walk(tree)
                 if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                 and node.value.id == "sa"}
    ours = set(artifact_types.__all__)
    assert ours <= tfx_types, ours - tfx_types
    for name in ours:
        assert getattr(artifact_types, name).schema_title == f"system.{name}"
