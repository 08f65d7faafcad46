"""boto3, as edgeship uses it (boto3 ships no type information): an S3 client and the calls
``edgeship.edge_pusher.buckets`` (and the benchmarks) make, with the response fields read."""

from collections.abc import Iterator
from typing import Any, Literal, TypedDict, type_check_only

from botocore.config import Config

@type_check_only
class StreamingBody:
    def read(self, amt: int | None = None) -> bytes: ...

class _GetObjectOutputCore(TypedDict):
    Body: StreamingBody
    ETag: str

class GetObjectOutput(_GetObjectOutputCore, total=False):
    ContentLength: int

class PutObjectOutput(TypedDict):
    ETag: str

class ObjectSummary(TypedDict):
    Key: str

class ListObjectsV2Output(TypedDict, total=False):
    Contents: list[ObjectSummary]

@type_check_only
class ListObjectsV2Paginator:
    def paginate(self, *, Bucket: str, Prefix: str = ...) -> Iterator[ListObjectsV2Output]: ...

@type_check_only
class S3Client:
    def get_object(self, *, Bucket: str, Key: str) -> GetObjectOutput: ...
    def head_object(self, *, Bucket: str, Key: str) -> dict[str, Any]: ...
    def put_object(self, *, Bucket: str, Key: str, Body: bytes, IfNoneMatch: str = ...,
                   IfMatch: str = ...) -> PutObjectOutput: ...
    def delete_object(self, *, Bucket: str, Key: str, IfMatch: str = ...) -> dict[str, Any]: ...
    def create_bucket(self, *, Bucket: str) -> dict[str, Any]: ...
    def get_paginator(self, operation_name: Literal["list_objects_v2"]
                      ) -> ListObjectsV2Paginator: ...

def client(service_name: Literal["s3"], *, endpoint_url: str | None = None,
           region_name: str | None = None, config: Config | None = None) -> S3Client: ...
def __getattr__(name: str) -> Any: ...
