# The parts of ML Metadata's generated metadata_store_pb2 that edgeship uses (no .pyi ships).
from typing import Any

from google.protobuf.message import Message

class Execution(Message):
    # the enum wrapper: State.Name(value), State.Value(name)
    State: Any
    def __getattr__(self, name: str) -> Any: ...

class Event(Message):
    # Type's values
    UNKNOWN: int
    DECLARED_OUTPUT: int
    DECLARED_INPUT: int
    INPUT: int
    OUTPUT: int
    INTERNAL_INPUT: int
    INTERNAL_OUTPUT: int
    PENDING_OUTPUT: int
    def __getattr__(self, name: str) -> Any: ...

def __getattr__(name: str) -> Any: ...
