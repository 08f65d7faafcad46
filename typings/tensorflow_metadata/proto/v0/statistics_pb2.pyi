# The parts of tensorflow_metadata's generated statistics_pb2 that edgeship uses.
from typing import Any

from google.protobuf.message import Message

class DatasetFeatureStatisticsList(Message):
    def __getattr__(self, name: str) -> Any: ...

class DatasetFeatureStatistics(Message):
    def __getattr__(self, name: str) -> Any: ...

def __getattr__(name: str) -> Any: ...
