"""How a device reaches the repository: plain GETs only, each within a deadline.

``http(s)://`` goes through :class:`HttpFetcher` (python-tuf's urllib3 fetcher, reading what
has arrived rather than waiting for whole chunks; a public-read bucket or CDN, no S3 SDK);
``file://`` reads a folder (an SD card, an NFS mount, tests). :class:`CountingFetcher` wraps
either and counts requests and bytes: firmware on a metered cellular link can report what its
polls cost, and the benchmarks measure the idle-poll budget with it.

:class:`DeadlineFetcher` stops the *slow retrieval* attack of the TUF specification: a server
(or a network in between) that answers, but a byte every few seconds, would otherwise hold a
poll for hours, since a per-read socket timeout never fires while bytes trickle in. Every file
has a deadline and a minimum average rate, and a whole poll has a deadline
(:class:`TransferLimits`); past any of them the download ends with python-tuf's
``SlowRetrievalError``, which the agent records as the refusal ``slow-retrieval``.

:class:`FileFetcher` holds a ``file://`` bucket to the same rules: whoever can write an SD
card or an NFS export can leave a FIFO (opening it blocks), ``/dev/zero`` (reading it never
ends) or a link out of the bucket where a file belongs, and a stalled mount blocks ``open`` and
``read`` inside the kernel. It reads regular files inside the bucket only (:class:`UnsafeFile`,
the refusal ``unsafe-file``), no longer than the length python-tuf asks for, and in a thread of
its own that the poll waits for under its deadlines.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import socket
import stat
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import IO, Any, cast

import urllib3
import urllib3.connection
import urllib3.util
from tuf.api import exceptions
from tuf.ngclient.fetcher import FetcherInterface
from tuf.ngclient.urllib3_fetcher import Urllib3Fetcher

from edgeship.contract import file_kind
from edgeship.errors import OtaError

_CHUNK = 64 * 1024
#: The current poll's deadline (time.monotonic), for the fetcher DeadlineFetcher wraps.
_poll_deadline: ContextVar[float] = ContextVar("edgeship_poll_deadline", default=float("inf"))
#: The length python-tuf asks for (the signed length, or its cap) of the current download.
_max_length: ContextVar[int | None] = ContextVar("edgeship_max_length", default=None)


@dataclass(frozen=True)
class TransferLimits:
    """How long a device waits for the repository. The defaults suit a slow cellular link
    (a 10 MB model at 2G's ~10 KB/s takes ~17 min) while a server dripping bytes is cut off
    within about a minute (a chunked answer, which states no length, at ``file_seconds``)."""

    #: Seconds one file (metadata, channel index or model) may take from request to last byte.
    file_seconds: float = 1800.0
    #: Bytes per second a file must average once ``grace_seconds`` have passed.
    min_bytes_per_second: float = 256.0
    grace_seconds: float = 30.0
    #: Seconds a whole poll may spend downloading, over all its files.
    poll_seconds: float = 3600.0
    #: Seconds to connect, and the longest silence between two reads of one response.
    socket_seconds: float = 20.0

    def __post_init__(self) -> None:
        for name in ("file_seconds", "min_bytes_per_second", "grace_seconds", "poll_seconds",
                     "socket_seconds"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value >= 0 or value == float("inf"):
                raise OtaError(f"transfer limit {name} must be a finite number >= 0, "
                               f"not {value!r}")
        if self.socket_seconds == 0:
            raise OtaError("transfer limit socket_seconds must be above 0")


class DeadlineFetcher(FetcherInterface):
    """Applies :class:`TransferLimits` to any fetcher's downloads. The checks run between the
    pieces the inner fetcher yields, so the inner fetcher must yield what arrives without
    waiting for more (as :class:`HttpFetcher` and :class:`FileFetcher` do) and bound its
    silences; :meth:`start_poll` begins a poll's overall deadline."""

    def __init__(self, inner: FetcherInterface, limits: TransferLimits,
                 clock: Callable[[], float] = time.monotonic):
        self.inner, self.limits, self.clock = inner, limits, clock
        self.poll_deadline = float("inf")
        self._length: int | None = None
        #: The file this poll requested last: what a refusal of python-tuf's concerns.
        self.last_url: str | None = None

    def start_poll(self) -> None:
        self.poll_deadline = self.clock() + self.limits.poll_seconds
        self.last_url = None

    # the base is a @contextmanager (its decorated class, of a bare IO); this returns that
    # same object, typed as the context manager of a binary file that it is
    def download_file(  # pyright: ignore[reportIncompatibleMethodOverride]
            self, url: str, max_length: int) -> contextlib.AbstractContextManager[IO[bytes]]:
        """python-tuf's download, noting the length it asks for (the signed length, or its
        cap) so that a fetcher that can know a file's size first (:class:`FileFetcher`)
        refuses a longer one without reading it."""
        self._length = max_length
        # python-tuf annotates a bare IO; the file it yields is a binary temporary file
        return cast("contextlib.AbstractContextManager[IO[bytes]]",
                    super().download_file(url, max_length))

    def _fetch(self, url: str) -> Iterator[bytes]:
        self.last_url = url
        start = self.clock()
        self._check(url, start, start, 0)
        remaining = self.poll_deadline - start
        token = _poll_deadline.set(time.monotonic() + remaining)  # for HttpFetcher's watch
        length, self._length = self._length, None
        length_token = _max_length.set(length)  # for FileFetcher
        try:
            chunks = self.inner.fetch(url)
        finally:
            _max_length.reset(length_token)
            _poll_deadline.reset(token)
        return self._limited(url, start, chunks)

    def _limited(self, url: str, start: float, chunks: Iterator[bytes]) -> Iterator[bytes]:
        received = 0
        for chunk in chunks:
            received += len(chunk)
            self._check(url, start, self.clock(), received)
            yield chunk

    def _check(self, url: str, start: float, now: float, received: int) -> None:
        limits, elapsed = self.limits, now - start
        if now > self.poll_deadline:
            raise exceptions.SlowRetrievalError(
                f"{url}: the poll has spent its {limits.poll_seconds:g} s on downloads")
        if elapsed > limits.file_seconds:
            raise exceptions.SlowRetrievalError(
                f"{url}: not complete after {limits.file_seconds:g} s ({received} bytes)")
        if elapsed > limits.grace_seconds and received < limits.min_bytes_per_second * elapsed:
            raise exceptions.SlowRetrievalError(
                f"{url}: {received} bytes in {elapsed:.0f} s, below the minimum average of "
                f"{limits.min_bytes_per_second:g} bytes/s")


class _Watch:
    """Shuts a download's socket down at its deadline. A socket timeout counts silence, not
    slowness: a server that sends its status line and then a header byte every few seconds
    keeps ``http.client`` reading inside one call, where no check of ours runs; shutting the
    socket down from this timer is what ends that read."""

    def __init__(self, seconds: float):
        self.fired = False
        self._sock: Any = None
        self._lock = threading.Lock()
        self._timer = self._start(seconds)

    def _start(self, seconds: float) -> threading.Timer:
        timer = threading.Timer(min(max(0.0, seconds), threading.TIMEOUT_MAX), self._fire)
        timer.daemon = True
        timer.start()
        return timer

    def arm(self, sock: Any) -> None:
        """Watch ``sock`` (each connection a redirect opens, in turn)."""
        with self._lock:
            self._sock = sock
            if self.fired:
                _shut(sock)

    def extend(self, seconds: float) -> None:
        """A new deadline, ``seconds`` from now (the body's, once the headers are in)."""
        with self._lock:
            if self.fired:
                return
            self._timer.cancel()
            self._timer = self._start(seconds)

    def stop(self) -> None:
        self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            _shut(self._sock)


def _shut(sock: Any) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


_watching = threading.local()  # the _Watch of this thread's current request


class _WatchedConnection:
    """Hands its socket to the thread's :class:`_Watch` once the request is sent, before
    ``http.client`` starts reading the answer."""

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        watch = getattr(_watching, "watch", None)
        if watch is not None:
            watch.arm(self.sock)  # type: ignore[attr-defined]
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_WatchedConnection, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_WatchedConnection, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    # urllib3 declares the base protocol class; a subclass of its HTTPConnection is one
    ConnectionCls = _HTTPConnection  # pyright: ignore[reportAssignmentType]


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection  # pyright: ignore[reportAssignmentType]


_WATCHED_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}
#: Signed lengths and hashes are of the bytes as stored: no compressed answers.
_HEADERS = {"Accept-Encoding": "identity"}


class HttpFetcher(Urllib3Fetcher):
    """python-tuf's urllib3 fetcher (its proxy and User-Agent handling), reading each response
    as bytes arrive (``read1``) so that :class:`DeadlineFetcher` sees a trickle as it comes,
    turning every transport failure into a ``DownloadError`` that names the URL, and holding
    each download to hard deadlines (:class:`_Watch`): its answer's headers within
    ``grace_seconds + socket_seconds``, all of it within ``file_seconds`` (or the poll's
    deadline, when :class:`DeadlineFetcher` runs it)."""

    def __init__(self, limits: TransferLimits | None = None):
        self.limits = limits or TransferLimits()
        super().__init__(socket_timeout=self.limits.socket_seconds)  # type: ignore[arg-type]

    #: Redirects are followed (a CDN may send one); nothing is retried within a poll: the
    #: agent's next poll, with backoff, is the retry.
    RETRIES = urllib3.Retry(total=5, connect=0, read=0, status=0, other=0, redirect=5)

    def _fetch(self, url: str) -> Iterator[bytes]:
        deadline = min(time.monotonic() + self.limits.file_seconds, _poll_deadline.get())
        headers_within = self.limits.grace_seconds + self.limits.socket_seconds
        watch = _Watch(min(headers_within, deadline - time.monotonic()))
        parsed = urllib3.util.parse_url(url)
        manager = self._proxy_env.get_pool_manager(parsed.scheme, parsed.host)
        manager.pool_classes_by_scheme = _WATCHED_POOLS
        _watching.watch = watch
        try:
            response = manager.request(
                "GET", url, preload_content=False, retries=self.RETRIES,
                headers={**manager.headers, **_HEADERS},
                timeout=urllib3.Timeout(connect=self.socket_timeout, read=self.socket_timeout))
        except urllib3.exceptions.HTTPError as e:
            watch.stop()
            raise self._failure(url, e, "cannot connect", watch,
                                f"no complete answer within {headers_within:g} s") from None
        finally:
            _watching.watch = None
        if watch.fired:  # a shut socket can look like the end of the headers
            response.close()
            raise exceptions.SlowRetrievalError(
                f"{url}: no complete answer within {headers_within:g} s")
        if not 200 <= response.status < 300:
            watch.stop()
            response.release_conn()
            raise exceptions.DownloadHTTPError(f"{url}: HTTP {response.status}",
                                               response.status)
        encoding = response.headers.get("Content-Encoding", "identity").lower()
        if encoding != "identity":  # signed lengths and hashes are of the bytes as stored
            watch.stop()
            response.close()
            raise exceptions.DownloadError(f"{url}: answered with Content-Encoding {encoding}")
        watch.extend(self._body_seconds(response, deadline))
        return self._pieces(url, response, watch)

    def _body_seconds(self, response: Any, deadline: float) -> float:
        """Seconds the body may take: to the download's deadline, and, when the answer says
        its length, no longer than that length at the minimum rate (after the grace period):
        a drip inside one read (a chunk-size line) is then cut as soon as the rate is."""
        seconds = deadline - time.monotonic()
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and self.limits.min_bytes_per_second > 0:
            seconds = min(seconds, self.limits.grace_seconds + self.limits.socket_seconds
                          + int(length) / self.limits.min_bytes_per_second)
        return seconds

    def _pieces(self, url: str, response: Any, watch: _Watch) -> Iterator[bytes]:
        complete = False
        try:
            while piece := response.read1(_CHUNK, decode_content=False):
                yield piece
            if watch.fired:  # the shutdown can look like the end of the body
                raise exceptions.SlowRetrievalError(f"{url}: not complete by its deadline")
            complete = True
        except urllib3.exceptions.HTTPError as e:
            raise self._failure(url, e, "transfer broken off", watch,
                                "not complete by its deadline") from None
        finally:
            watch.stop()
            if complete:
                response.release_conn()
            else:  # cut off, or abandoned by the caller: never back into the pool half-read
                response.close()

    def _failure(self, url: str, error: Exception, what: str, watch: _Watch,
                 late: str) -> exceptions.DownloadError:
        """A refused connection, a failed DNS lookup or a broken transfer is a download
        error; silence past the socket timeout, or a deadline the watch enforced, is a slow
        retrieval. (urllib3 files a refused connection under its timeouts, which is why
        python-tuf's own fetcher reports an unreachable host as an empty
        ``SlowRetrievalError``.)"""
        if watch.fired:
            return exceptions.SlowRetrievalError(f"{url}: {late}")
        reason = (error.reason or error) if isinstance(error, urllib3.exceptions.MaxRetryError) \
            else error
        if isinstance(reason, urllib3.exceptions.ConnectTimeoutError):  # NewConnectionError too
            return exceptions.DownloadError(f"{url}: cannot connect: {_why(reason)}")
        if isinstance(reason, urllib3.exceptions.TimeoutError):
            return exceptions.SlowRetrievalError(
                f"{url}: nothing received for {self.socket_timeout:g} s")
        return exceptions.DownloadError(f"{url}: {what}: {_why(reason)}")


def _why(error: BaseException) -> str:
    """urllib3's message without the connection object it carries."""
    last = error.args[-1] if error.args else ""
    text = last if isinstance(last, str) else str(error)
    return text.split(": ", 1)[-1] if text.startswith("<") else (text or type(error).__name__)


class UnsafeFile(exceptions.DownloadError):
    """A ``file://`` bucket path that is not a regular file inside the bucket: a FIFO (opening
    or reading it blocks for ever), a device (``/dev/zero`` never ends), a socket, or a link
    out of the bucket. Refused as ``unsafe-file``; nothing of it is read."""

def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


class _FileReader(threading.Thread):
    """Opens and reads one file of a ``file://`` bucket in its own (daemon) thread and hands
    what it reads to :class:`FileFetcher` through a small queue. On an SD card that stalls or
    an NFS export whose server has gone, ``open()`` and ``read()`` block inside the kernel
    where no deadline of ours can run; here the poll waits for the queue, with its deadline,
    and abandons a thread that does not answer instead of hanging with it."""

    def __init__(self, url: str, path: str, root: str | None, max_length: int | None):
        super().__init__(daemon=True, name="edgeship-file-read")
        self.url, self.path, self.root, self.max_length = url, path, root, max_length
        self.queue: queue.Queue[object] = queue.Queue(maxsize=4)
        self.stop = threading.Event()
        self.size = 0

    def run(self) -> None:
        try:
            fd = self._open()
        except BaseException as e:  # noqa: BLE001 - handed to the poll's thread
            self._put(e)
            return
        self._put(True)
        left = None if self.max_length is None else self.max_length + 1
        try:
            with os.fdopen(fd, "rb", buffering=0) as f:
                while not self.stop.is_set():
                    # python-tuf refuses what passes its length; one byte more shows it that
                    chunk = f.read(_CHUNK if left is None else min(_CHUNK, left))
                    self._put(chunk)
                    if not chunk:
                        return
                    if left is not None:
                        left -= len(chunk)
                        if left <= 0:
                            self._put(b"")
                            return
        except OSError as e:
            self._put(exceptions.DownloadError(f"{self.url}: cannot read: {e.strerror or e}"))

    def _open(self) -> int:
        """The file's descriptor, opened without following a link in its last part and
        without blocking (a FIFO opens at once, and is then refused), and checked with
        ``fstat`` on what was opened, so that nothing swapped in after a check is read."""
        url, path = self.url, self.path
        if self.root is not None:
            real = os.path.realpath(path)
            if not _inside(real, self.root):  # a link out of the bucket, e.g. to /dev/zero
                raise UnsafeFile(f"{url} leads out of the bucket (to {real})")
            path = real
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise exceptions.DownloadHTTPError(f"{url} not found", 404) from None
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENXIO, errno.EMLINK):  # a link; a socket
                raise UnsafeFile(f"{url} is {'a socket' if e.errno == errno.ENXIO else 'a link'}"
                                 " where the bucket keeps a file") from None
            raise exceptions.DownloadError(f"{url}: cannot open: {e.strerror or e}") from None
        try:
            self._check(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _check(self, fd: int) -> None:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise exceptions.DownloadHTTPError(f"{self.url} is a directory", 403)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFile(f"{self.url} is {file_kind(st.st_mode)}, not a regular file")
        opened = f"/proc/self/fd/{fd}"  # where the descriptor really is (Linux): race-free
        if self.root is not None and os.path.islink(opened):
            real = os.readlink(opened)
            if os.path.isabs(real) and not _inside(real, self.root):
                raise UnsafeFile(f"{self.url} leads out of the bucket (to {real})")
        if self.max_length is not None and st.st_size > self.max_length:
            raise exceptions.DownloadLengthMismatchError(
                f"{self.url} is {st.st_size} bytes, exceeding the maximum allowed length of "
                f"{self.max_length}: refused unread")
        self.size = st.st_size

    def _put(self, item: object) -> None:
        while not self.stop.is_set():  # a poll that gave up is never waited for
            try:
                self.queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def take(self, deadline: float, late: str) -> object:
        """The next item, or ``SlowRetrievalError`` when none comes before ``deadline``."""
        try:
            item = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            self.stop.set()
            raise exceptions.SlowRetrievalError(f"{self.url}: {late}") from None
        if isinstance(item, BaseException):
            self.stop.set()
            raise item
        return item


class FileFetcher(FetcherInterface):
    """Serve ``file://`` URLs (an SD card, an NFS export, tests) under the same rules as
    HTTP: a missing file is HTTP 404 as a bucket would answer (ngclient relies on 404 to know
    it has reached the newest root); only regular files inside the bucket ``root`` are read
    (anything else is :class:`UnsafeFile`); a file larger than the length python-tuf asks for
    is refused before it is read, and no more than that length (plus the one byte that shows
    python-tuf it is too long) is ever read; and the open must end within
    ``grace_seconds + socket_seconds``, the whole file within ``file_seconds``, the poll's
    deadline, and its size at ``min_bytes_per_second`` after the grace, as an HTTP body
    must."""

    def __init__(self, root: str | None = None, limits: TransferLimits | None = None):
        self.root = os.path.realpath(root) if root is not None else None
        self.limits = limits or TransferLimits()

    def _fetch(self, url: str) -> Iterator[bytes]:
        limits = self.limits
        path = urllib.parse.unquote(urllib.parse.urlparse(url).path)
        start = time.monotonic()
        deadline = min(start + limits.file_seconds, _poll_deadline.get())
        reader = _FileReader(url, path, self.root, _max_length.get())
        reader.start()
        opened_within = limits.grace_seconds + limits.socket_seconds
        reader.take(min(deadline, start + opened_within),
                    f"not opened within {min(opened_within, deadline - start):g} s")
        if limits.min_bytes_per_second > 0:
            deadline = min(deadline, start + opened_within
                           + reader.size / limits.min_bytes_per_second)
        return self._pieces(reader, deadline)

    @staticmethod
    def _pieces(reader: _FileReader, deadline: float) -> Iterator[bytes]:
        try:
            while chunk := reader.take(deadline, "not complete by its deadline"):
                yield chunk  # type: ignore[misc]
        finally:
            reader.stop.set()


class CountingFetcher(FetcherInterface):
    """Counts requests (including failed ones) and body bytes received."""

    def __init__(self, inner: FetcherInterface):
        self.inner = inner
        self.requests = 0
        self.bytes = 0
        self.urls: list[str] = []

    def reset(self) -> None:
        self.requests = self.bytes = 0
        self.urls = []

    def _fetch(self, url: str) -> Iterator[bytes]:
        self.requests += 1
        self.urls.append(url)
        chunks = self.inner.fetch(url)
        return self._count(chunks)

    def _count(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.bytes += len(chunk)
            yield chunk


def fetcher_for(url: str, limits: TransferLimits | None = None) -> FetcherInterface:
    """A fetcher for ``url``'s scheme."""
    scheme = urllib.parse.urlparse(url).scheme
    if scheme in ("", "file"):
        root = urllib.parse.unquote(urllib.parse.urlparse(url).path) if scheme else url
        return FileFetcher(root, limits)
    if scheme in ("http", "https"):
        return HttpFetcher(limits)
    raise OtaError(f"devices poll http(s):// or file:// repositories, not {url}; give them the "
                   "bucket's public https:// URL")


def normalize_repo_url(url: str) -> str:
    """Plain paths become file:// URLs; no trailing slash."""
    if "://" not in url:
        url = "file://" + os.path.abspath(url)
    return url.rstrip("/")
