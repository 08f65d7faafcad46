# The parts of tensorflow_metadata's generated anomalies_pb2 that edgeship uses.
from typing import Any

from google.protobuf.message import Message

class Anomalies(Message):
    def __getattr__(self, name: str) -> Any: ...

class AnomalyInfo(Message):
    def __getattr__(self, name: str) -> Any: ...

class DriftSkewInfo(Message):
    class Measurement(Message):
        # the enum wrapper: Type.Name(value), Type.Value(name)
        Type: Any
        def __getattr__(self, name: str) -> Any: ...

    def __getattr__(self, name: str) -> Any: ...

def __getattr__(name: str) -> Any: ...
