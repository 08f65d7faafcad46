"""botocore, as edgeship uses it (no type information of its own): its client configuration
and the two exception roots an S3 call raises."""

from typing import Any

def __getattr__(name: str) -> Any: ...
