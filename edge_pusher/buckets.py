"""Bucket backends behind one small interface.

The OTA repository is a set of immutable, content- or version-named objects plus two mutable
ones (``metadata/timestamp.json`` and the publish lock). So a backend needs only get/put/exists/
list/delete and two *conditional* writes: create-if-absent and replace-if-unchanged (an ETag
compare-and-swap). Those two are what let concurrent publishers fail safely instead of
overwriting each other.

- ``file://DIR``: a local folder (the embedded default). Atomic via temp file + rename / link.
- ``s3://bucket/prefix``: AWS S3, MinIO, SeaweedFS via boto3. Conditional writes use the
  ``If-None-Match: *`` and ``If-Match`` headers of PutObject.
- ``http(s)://...``: read-only plain GETs, for devices polling a public-read bucket. No S3 SDK.

boto3 is imported only when an ``s3://`` bucket is opened, so device code never pulls it in.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request

from edgeship.errors import NotFound, OtaError, PreconditionFailed


class Bucket:
    """Minimal object store. Keys are '/'-separated and relative to the bucket root/prefix."""

    url: str
    read_only = False

    def get(self, key: str) -> bytes:
        return self.get_with_etag(key)[0]

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def list(self, prefix: str = "") -> list[str]:
        raise NotImplementedError

    def put(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def put_if_absent(self, key: str, data: bytes) -> str:
        """Create ``key``; raise :class:`PreconditionFailed` if it exists. Returns the ETag."""
        raise NotImplementedError

    def put_if_match(self, key: str, data: bytes, etag: str) -> str:
        """Replace ``key`` only if its ETag is still ``etag``. Returns the new ETag."""
        raise NotImplementedError

    def delete(self, key: str, if_match: str | None = None) -> None:
        raise NotImplementedError

    def join(self, key: str) -> str:
        """The URL of one object, for messages and for devices."""
        return f"{self.url.rstrip('/')}/{key}"


def _content_etag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FileBucket(Bucket):
    """A local folder. Conditional writes are serialised by an flock on a sidecar file."""

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.url = "file://" + self.root

    def _path(self, key: str) -> str:
        clean = os.path.normpath(key)
        if clean.startswith("..") or os.path.isabs(clean):
            raise OtaError(f"bucket key {key!r} escapes the bucket")
        return os.path.join(self.root, clean)

    @contextlib.contextmanager
    def _cas_lock(self):
        os.makedirs(self.root, exist_ok=True)
        with open(os.path.join(self.root, ".edgeship-cas.lock"), "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        try:
            with open(self._path(key), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise NotFound(f"{self.join(key)} does not exist") from None
        return data, _content_etag(data)

    def exists(self, key: str) -> bool:
        return os.path.isfile(self._path(key))

    def list(self, prefix: str = "") -> list[str]:
        out = []
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(".edgeship-") or name.endswith(".edgeship-tmp"):
                    continue
                key = os.path.relpath(os.path.join(dirpath, name), self.root).replace(os.sep, "/")
                if key.startswith(prefix):
                    out.append(key)
        return sorted(out)

    def _write_temp(self, path: str, data: bytes) -> str:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".edgeship-tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return tmp

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        tmp = self._write_temp(path, data)
        os.replace(tmp, path)

    def put_if_absent(self, key: str, data: bytes) -> str:
        path = self._path(key)
        tmp = self._write_temp(path, data)
        try:
            os.link(tmp, path)  # atomic create-if-absent of a complete file
        except FileExistsError:
            raise PreconditionFailed(f"{self.join(key)} already exists") from None
        finally:
            os.unlink(tmp)
        return _content_etag(data)

    def put_if_match(self, key: str, data: bytes, etag: str) -> str:
        path = self._path(key)
        with self._cas_lock():
            try:
                _, current = self.get_with_etag(key)
            except NotFound:
                raise PreconditionFailed(f"{self.join(key)} disappeared") from None
            if current != etag:
                raise PreconditionFailed(f"{self.join(key)} changed since it was read")
            tmp = self._write_temp(path, data)
            os.replace(tmp, path)
        return _content_etag(data)

    def delete(self, key: str, if_match: str | None = None) -> None:
        with self._cas_lock():
            if if_match is not None:
                try:
                    _, current = self.get_with_etag(key)
                except NotFound:
                    return
                if current != if_match:
                    raise PreconditionFailed(f"{self.join(key)} changed since it was read")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(key))


class S3Bucket(Bucket):
    """S3-compatible storage through boto3.

    Endpoint, region and credentials come from explicit arguments or else from boto3's usual
    environment (AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3, AWS_REGION / AWS_DEFAULT_REGION,
    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE), so the same code
    runs against AWS, MinIO and SeaweedFS, and on a cluster against a Kubernetes Secret.
    """

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None,
                 region: str | None = None, client=None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self._endpoint_url = endpoint_url
        self._region = region
        self._client = client

    @property
    def client(self):
        if self._client is None:
            try:
                import boto3  # deferred: devices never open s3:// buckets
                from botocore.config import Config
            except ImportError:
                raise OtaError("s3:// buckets need boto3: pip install 'edgeship[pipelines]'") \
                    from None
            region = self._region or os.environ.get("AWS_REGION") or \
                os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
            self._client = boto3.client(
                "s3", endpoint_url=self._endpoint_url, region_name=region,
                config=Config(retries={"max_attempts": 3, "mode": "standard"}),
            )
        return self._client

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, what: str, key: str, fn, **kw):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(Bucket=self.bucket, Key=self._key(key), **kw)
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("NoSuchKey", "404", "NotFound") or status == 404:
                raise NotFound(f"{self.join(key)} does not exist") from None
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
                raise PreconditionFailed(f"{self.join(key)}: conditional {what} lost ({code})") \
                    from None
            raise OtaError(f"S3 {what} {self.join(key)} failed: {code or status}: {e}") from None
        except BotoCoreError as e:
            raise OtaError(f"S3 {what} {self.join(key)} failed: {e}") from None

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        resp = self._call("get", key, self.client.get_object)
        return resp["Body"].read(), resp["ETag"]

    def exists(self, key: str) -> bool:
        try:
            self._call("head", key, self.client.head_object)
        except NotFound:
            return False
        return True

    def list(self, prefix: str = "") -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        strip = len(self.prefix) + 1 if self.prefix else 0
        out = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(prefix))
            for page in pages:
                out.extend(obj["Key"][strip:] for obj in page.get("Contents", []))
        except (ClientError, BotoCoreError) as e:
            raise OtaError(f"S3 list {self.join(prefix)} failed: {e}") from None
        return sorted(out)

    def put(self, key: str, data: bytes) -> None:
        self._call("put", key, self.client.put_object, Body=data)

    def put_if_absent(self, key: str, data: bytes) -> str:
        return self._call("put", key, self.client.put_object, Body=data, IfNoneMatch="*")["ETag"]

    def put_if_match(self, key: str, data: bytes, etag: str) -> str:
        return self._call("put", key, self.client.put_object, Body=data, IfMatch=etag)["ETag"]

    def delete(self, key: str, if_match: str | None = None) -> None:
        kw = {"IfMatch": if_match} if if_match else {}
        try:
            self._call("delete", key, self.client.delete_object, **kw)
        except NotFound:
            pass


class HttpBucket(Bucket):
    """Read-only access to a bucket published over plain HTTP(S) (public-read S3, a CDN, nginx)."""

    read_only = True

    def __init__(self, url: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _open(self, key: str):
        try:
            return urllib.request.urlopen(self.join(key), timeout=self.timeout)  # noqa: S310
        except urllib.error.HTTPError as e:
            if e.code in (403, 404):
                raise NotFound(f"{self.join(key)} does not exist (HTTP {e.code})") from None
            raise OtaError(f"GET {self.join(key)} failed: HTTP {e.code}") from None
        except (urllib.error.URLError, OSError) as e:
            raise OtaError(f"GET {self.join(key)} failed: {e}") from None

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        with self._open(key) as resp:
            data = resp.read()
            return data, resp.headers.get("ETag") or _content_etag(data)

    def exists(self, key: str) -> bool:
        try:
            self._open(key).close()
        except NotFound:
            return False
        return True

    def _read_only(self, *_a, **_k):
        raise OtaError(f"{self.url} is read-only (HTTP); publish to its s3:// or file:// URL")

    list = put = put_if_absent = put_if_match = delete = _read_only


def open_bucket(url: str, *, endpoint_url: str | None = None, region: str | None = None) -> Bucket:
    """Open ``file://DIR`` (or a plain path), ``s3://bucket/prefix`` or ``http(s)://...``."""
    if not url:
        raise OtaError("no bucket URL given")
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme in ("", "file"):
        path = parsed.path if parsed.scheme else url
        if parsed.scheme and parsed.netloc not in ("", "localhost"):
            raise OtaError(f"file URL {url!r} must look like file:///abs/path")
        return FileBucket(path)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise OtaError(f"S3 URL {url!r} must look like s3://bucket/prefix")
        return S3Bucket(parsed.netloc, parsed.path, endpoint_url=endpoint_url, region=region)
    if parsed.scheme in ("http", "https"):
        return HttpBucket(url)
    raise OtaError(f"unsupported bucket URL {url!r}: use file://, s3:// or http(s)://")

