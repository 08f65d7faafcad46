from typing import Any, TypedDict

class BotoCoreError(Exception): ...

class _Error(TypedDict, total=False):
    Code: str
    Message: str

class _ResponseMetadata(TypedDict, total=False):
    HTTPStatusCode: int

class ClientErrorResponse(TypedDict, total=False):
    Error: _Error
    ResponseMetadata: _ResponseMetadata

class ClientError(Exception):
    response: ClientErrorResponse
    operation_name: str
    def __init__(self, error_response: ClientErrorResponse | dict[str, Any],
                 operation_name: str) -> None: ...

def __getattr__(name: str) -> Any: ...
