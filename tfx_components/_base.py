"""How a step becomes a TFX component, once for all six.

A step's parameters are its ``*Params`` dataclass (``edgeship.params``): the
component's execution parameters are made from that dataclass, with its types and defaults,
so nothing is spelled twice. The executor turns TFX's artifacts into folders and the
execution properties back into the dataclass, and runs the step's own executor inside
``step_errors``, so bad input ends a TFX run with the same one line as the KFP step.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from edgeship.errors import step_errors

#: The custom property of every output artifact that holds the step's summary (JSON): what
#: ``edgeship run --orchestrator tfx`` shows in its table, read back from ML Metadata.
SUMMARY_PROPERTY = "edgeship_summary"

#: (artifact type, optional) of an input; the artifact type of an output.
Inputs = dict[str, tuple[type[types.Artifact], bool]]
Outputs = dict[str, type[types.Artifact]]


class StepExecutor(base_executor.BaseExecutor):
    """Runs one step: subclasses (at module level, where TFX finds them by name) set
    ``STEP`` (the name its errors start with), ``PARAMS`` (the step's dataclass) and
    ``run(inputs, outputs, params)``, which gets one artifact, or None, per name, and returns
    the step executor's summary."""

    STEP: str
    PARAMS: type

    def run(self, inputs: dict[str, Any], outputs: dict[str, Any], params: Any
            ) -> dict[str, Any]:
        raise NotImplementedError

    def Do(self, input_dict, output_dict, exec_properties):  # noqa: N802 - TFX's API
        hints = typing.get_type_hints(self.PARAMS)
        with step_errors(self.STEP):
            params = self.PARAMS(**{name: _decode(value, hints[name])
                                    for name, value in exec_properties.items() if name in hints})
            outputs = {name: _single(value) for name, value in output_dict.items()}
            summary = self.run({name: _single(value) for name, value in input_dict.items()},
                               outputs, params)
        text = json.dumps(summary, default=str)
        for artifact in outputs.values():
            artifact.set_string_custom_property(SUMMARY_PROPERTY, text)


if typing.TYPE_CHECKING:
    class StepComponent(base_component.BaseComponent):
        """A class :func:`make_component` returns, as a checker sees it: its parameters come
        from the step's dataclass at run time, where unknown ones raise TypeError."""

        def __init__(self, **kwargs: Any) -> None: ...


def make_component(name: str, executor: type[StepExecutor], inputs: Inputs, outputs: Outputs,
                   doc: str) -> type[StepComponent]:
    """A TFX component class ``name``: ``Component(input=channel, ..., param=value)``, its
    execution parameters the executor's ``PARAMS`` (parameters left out take their
    defaults)."""
    hints = typing.get_type_hints(executor.PARAMS)
    fields = {f.name: f for f in dataclasses.fields(executor.PARAMS)}
    module = executor.__module__
    spec = type(f"{name}Spec", (types.ComponentSpec,), {
        "__module__": module,
        "PARAMETERS": {key: ExecutionParameter(type=_tfx_type(hints[key]),
                                               optional=_has_default(f))
                       for key, f in fields.items()},
        "INPUTS": {key: ChannelParameter(type=kind, optional=optional)
                   for key, (kind, optional) in inputs.items()},
        "OUTPUTS": {key: ChannelParameter(type=kind) for key, kind in outputs.items()},
    })

    def __init__(self, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(inputs) - set(fields))
        if unknown:
            raise TypeError(f"{name}: unknown argument(s) {', '.join(unknown)}")
        values = {key: value for key, value in kwargs.items() if key in fields}
        for key, f in fields.items():
            if key not in values and _has_default(f):
                values[key] = _default(f)
        values = {key: _encode(value, hints[key]) for key, value in values.items()}
        channels = {key: kwargs[key] for key in inputs if kwargs.get(key) is not None}
        made = {key: types.Channel(type=kind) for key, kind in outputs.items()}
        base_component.BaseComponent.__init__(self, spec=spec(**channels, **made, **values))

    return typing.cast("type[StepComponent]", type(name, (base_component.BaseComponent,), {
        "__module__": module,
        "__doc__": doc,
        "SPEC_CLASS": spec,
        "EXECUTOR_SPEC": executor_spec.ExecutorClassSpec(executor),
        "__init__": __init__,
    }))


def _has_default(f: dataclasses.Field) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    assert f.default_factory is not dataclasses.MISSING  # only called when _has_default(f)
    return f.default_factory()


def _tfx_type(hint: Any) -> Any:
    """The execution parameter's type. A list or dict travels as JSON text: TFX gives all of
    a dict's values one schema, so ``{"units": [256, 128], "dropout": 0.1}`` would not pass."""
    return str if typing.get_origin(hint) in (list, dict) else hint


def _encode(value: Any, hint: Any) -> Any:
    if typing.get_origin(hint) in (list, dict) and not isinstance(value, str):
        return json.dumps(value, sort_keys=True)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # min_accuracy=1 means 1.0
    return value


def _decode(value: Any, hint: Any) -> Any:
    """TFX hands list and dict parameters to executors as JSON text."""
    origin = typing.get_origin(hint)
    if origin in (list, dict) and isinstance(value, str):
        return json.loads(value)
    return value


def _single(artifacts: list | None) -> Any:
    return artifact_utils.get_single_instance(artifacts) if artifacts else None


def set_blessed(blessing: types.Artifact, blessed: bool, model: types.Artifact,
                baseline: types.Artifact | None = None) -> None:
    """What TFX's Evaluator sets: ``blessed`` for TFX's Pusher and InfraValidator, and the
    blessed model's URI and id, which TFX's latest-blessed-model resolver matches on."""
    blessing.set_int_custom_property("blessed", int(blessed))
    blessing.set_string_custom_property("current_model", model.uri)
    blessing.set_int_custom_property("current_model_id", model.id)
    if baseline is not None:
        blessing.set_string_custom_property("baseline_model", baseline.uri)
        blessing.set_int_custom_property("baseline_model_id", baseline.id)
