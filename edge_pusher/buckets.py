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
import secrets
import stat
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Generator
from http.client import HTTPResponse
from typing import TYPE_CHECKING, NoReturn, TypeVar

from edgeship.contract import file_kind
from edgeship.errors import NotFound, OtaError, PreconditionFailed

if TYPE_CHECKING:
    from boto3 import S3Client

_T = TypeVar("_T")


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
    """A local folder (an NFS export, an SD card, tests). Conditional writes are serialised by
    an flock on a sidecar file.

    Whoever else can write the folder can leave anything in it, so every object is reached as
    a device reaches it: folder by folder from the root, each opened without following a
    link (``O_NOFOLLOW``, then ``openat``), and read only when ``fstat`` on what was opened
    says it is a regular file. A link anywhere below the root (say ``targets/models`` pointing
    out of the bucket) is refused rather than written through, and a FIFO or a device is
    refused rather than read (opening a FIFO blocks until a writer comes, under the publish
    lock). Each refusal is one :class:`OtaError` line naming the object."""

    #: What a publish reads back (metadata, the channel index, the lock) is far smaller; a
    #: larger file is refused unread (a 3 GiB sparse file would exhaust memory under the lock).
    max_read_bytes = 64 << 20

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.url = "file://" + self.root

    def _parts(self, key: str) -> list[str]:
        clean = os.path.normpath(key)
        if clean.startswith("..") or os.path.isabs(clean) or clean == ".":
            raise OtaError(f"bucket key {key!r} escapes the bucket")
        return clean.split(os.sep)

    def _path(self, key: str) -> str:
        return os.path.join(self.root, *self._parts(key))

    def _unsafe(self, key: str, what: str) -> OtaError:
        return OtaError(f"{self.join(key)}: {what}; a file bucket holds only folders and "
                        "regular files (refused, nothing written)")

    @contextlib.contextmanager
    def _folder(self, key: str, create: bool) -> Generator[tuple[int, str], None, None]:
        """(a descriptor of the folder holding ``key``, its last part), the folder reached
        from the root without following any link; with ``create``, missing folders are made.
        :class:`NotFound` when a folder is missing, :class:`OtaError` when one is a link or
        not a folder."""
        parts = self._parts(key)
        if create:
            os.makedirs(self.root, exist_ok=True)
        try:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFound(f"{self.join(key)} does not exist") from None
        try:
            for i, part in enumerate(parts[:-1]):
                parent, fd = fd, -1  # _enter closes the parent, whatever happens
                fd = self._enter(parent, part, create, "/".join(parts[:i + 1]), key)
            yield fd, parts[-1]
        finally:
            if fd >= 0:
                os.close(fd)

    def _enter(self, parent: int, name: str, create: bool, shown: str, key: str) -> int:
        """The descriptor of folder ``name`` in ``parent`` (which it closes)."""
        try:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, dir_fd=parent)
            return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                           dir_fd=parent)
        except FileNotFoundError:
            raise NotFound(f"{self.join(key)} does not exist") from None
        except OSError as e:
            kind = _kind_at(parent, name)
            if kind is None:
                raise OtaError(f"{self.join(key)}: cannot open folder {shown}: "
                               f"{e.strerror or e}") from None
            raise self._unsafe(key, f"{shown} is {kind}, not a folder") from None
        finally:
            os.close(parent)

    def _open_file(self, folder: int, name: str, key: str) -> int:
        """A descriptor of regular file ``name`` in ``folder``: opened without following a
        link or blocking (a FIFO opens at once), then checked with fstat."""
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                         dir_fd=folder)
        except FileNotFoundError:
            raise NotFound(f"{self.join(key)} does not exist") from None
        except OSError as e:
            kind = _kind_at(folder, name)
            if kind is None:
                raise OtaError(f"{self.join(key)}: cannot open: {e.strerror or e}") from None
            raise self._unsafe(key, f"is {kind}") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise self._unsafe(key, f"is {file_kind(st.st_mode)}")
        if st.st_size > self.max_read_bytes:
            os.close(fd)
            raise OtaError(f"{self.join(key)} is {st.st_size} bytes, more than any object a "
                           f"publish reads ({self.max_read_bytes}); refused unread")
        return fd

    @contextlib.contextmanager
    def _cas_lock(self) -> Generator[None, None, None]:
        os.makedirs(self.root, exist_ok=True)
        with self._folder(".edgeship-cas.lock", create=True) as (folder, name):
            try:
                fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
                             | os.O_CLOEXEC, 0o644, dir_fd=folder)
            except OSError as e:
                raise self._unsafe(name, f"cannot be opened ({e.strerror or e})") from None
        with os.fdopen(fd, "r+b") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise self._unsafe(name, "is not a regular file")
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        with self._folder(key, create=False) as (folder, name):
            fd = self._open_file(folder, name, key)
        with os.fdopen(fd, "rb") as f:
            data = f.read(self.max_read_bytes + 1)  # a file that grew since fstat: cut off
        if len(data) > self.max_read_bytes:
            raise OtaError(f"{self.join(key)} is more than {self.max_read_bytes} bytes")
        return data, _content_etag(data)

    def exists(self, key: str) -> bool:
        """Whether ``key`` is a regular file; a link, FIFO or device there is refused."""
        try:
            with self._folder(key, create=False) as (folder, name):
                kind = _kind_at(folder, name)
        except NotFound:
            return False
        if kind not in (None, "a regular file"):
            raise self._unsafe(key, f"is {kind}")
        return kind is not None

    def list(self, prefix: str = "") -> list[str]:
        out: list[str] = []
        for dirpath, dirs, files in os.walk(self.root):
            for name in [*dirs, *files]:
                path = os.path.join(dirpath, name)
                key = os.path.relpath(path, self.root).replace(os.sep, "/")
                mode = os.lstat(path).st_mode
                if name.startswith(".edgeship-") or name.endswith(".edgeship-tmp"):
                    continue
                if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                    raise self._unsafe(key, f"is {file_kind(mode)}")
                if stat.S_ISREG(mode) and key.startswith(prefix):
                    out.append(key)
        return sorted(out)

    @staticmethod
    def _write_temp(folder: int, name: str, data: bytes) -> str:
        """A complete, synced copy of ``data`` beside ``name``, in ``folder``; its name."""
        for _ in range(100):
            tmp = f".{name}.{secrets.token_hex(6)}.edgeship-tmp"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                             | os.O_CLOEXEC, 0o644, dir_fd=folder)
                break
            except FileExistsError:
                continue
        else:
            raise OtaError(f"cannot create a temporary file beside {name}")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=folder)
            raise
        return tmp

    def put(self, key: str, data: bytes) -> None:
        with self._folder(key, create=True) as (folder, name):
            tmp = self._write_temp(folder, name, data)
            os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)

    def put_if_absent(self, key: str, data: bytes) -> str:
        with self._folder(key, create=True) as (folder, name):
            tmp = self._write_temp(folder, name, data)
            try:  # atomic create-if-absent of a complete file
                os.link(tmp, name, src_dir_fd=folder, dst_dir_fd=folder, follow_symlinks=False)
            except FileExistsError:
                raise PreconditionFailed(f"{self.join(key)} already exists") from None
            finally:
                os.unlink(tmp, dir_fd=folder)
        return _content_etag(data)

    def put_if_match(self, key: str, data: bytes, etag: str) -> str:
        with self._cas_lock():
            try:
                _, current = self.get_with_etag(key)
            except NotFound:
                raise PreconditionFailed(f"{self.join(key)} disappeared") from None
            if current != etag:
                raise PreconditionFailed(f"{self.join(key)} changed since it was read")
            self.put(key, data)
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
            try:
                with self._folder(key, create=False) as (folder, name):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(name, dir_fd=folder)
            except NotFound:
                return


def _kind_at(folder: int, name: str) -> str | None:
    """What ``name`` in ``folder`` is (without following a link), None when nothing."""
    try:
        return file_kind(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return None


class S3Bucket(Bucket):
    """S3-compatible storage through boto3.

    Endpoint, region and credentials come from explicit arguments or else from boto3's usual
    environment (AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3, AWS_REGION / AWS_DEFAULT_REGION,
    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE), so the same code
    runs against AWS, MinIO and SeaweedFS, and on a cluster against a Kubernetes Secret.
    """

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None,
                 region: str | None = None, client: S3Client | None = None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self._endpoint_url = endpoint_url
        self._region = region
        self._client = client

    @property
    def client(self) -> S3Client:
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

    def _call(self, what: str, key: str, fn: Callable[..., _T], **kw: str | bytes) -> _T:
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
        out: list[str] = []
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
        kw: dict[str, str] = {"IfMatch": if_match} if if_match else {}
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

    def _open(self, key: str) -> HTTPResponse:
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

    def _read_only(self, *_a: object, **_k: object) -> NoReturn:
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

