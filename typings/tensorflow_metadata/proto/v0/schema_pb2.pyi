# The parts of tensorflow_metadata's generated schema_pb2 that edgeship uses (no .pyi ships).
from typing import Any

from google.protobuf.message import Message

class Schema(Message):
    def __getattr__(self, name: str) -> Any: ...

# FeatureType's values
TYPE_UNKNOWN: int
BYTES: int
INT: int
FLOAT: int
STRUCT: int

def __getattr__(name: str) -> Any: ...
