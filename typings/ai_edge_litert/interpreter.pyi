"""LiteRT's Python interpreter (``ai_edge_litert.interpreter``), as edgeship uses it: the
package ships no type information. Only what ``edgeship.litert`` and the quantize step call."""

from collections.abc import Sequence
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt

class QuantizationParameters(TypedDict):
    scales: npt.NDArray[np.float32]
    zero_points: npt.NDArray[np.int32]
    quantized_dimension: int

class TensorDetails(TypedDict):
    """One entry of ``get_input_details()``, ``get_output_details()`` or
    ``get_tensor_details()``."""

    name: str
    index: int
    shape: npt.NDArray[np.int32]
    shape_signature: npt.NDArray[np.int32]
    dtype: type[np.generic]
    quantization: tuple[float, int]
    quantization_parameters: QuantizationParameters
    sparsity_parameters: dict[str, Any]

class Delegate: ...

def load_delegate(library: str, options: dict[str, str] | None = None) -> Delegate: ...

class Interpreter:
    def __init__(
        self,
        model_path: str | None = None,
        model_content: bytes | None = None,
        experimental_delegates: Sequence[Delegate] | None = None,
        num_threads: int | None = None,
    ) -> None: ...
    def allocate_tensors(self) -> None: ...
    def get_input_details(self) -> list[TensorDetails]: ...
    def get_output_details(self) -> list[TensorDetails]: ...
    def get_tensor_details(self, subgraph_index: int = 0) -> list[TensorDetails]: ...
    def resize_tensor_input(self, input_index: int, tensor_size: Sequence[int],
                            strict: bool = False) -> None: ...
    def set_tensor(self, tensor_index: int, value: npt.ArrayLike) -> None: ...
    def get_tensor(self, tensor_index: int, subgraph_index: int = 0) -> npt.NDArray[Any]: ...
    def invoke(self) -> None: ...

def __getattr__(name: str) -> Any: ...
