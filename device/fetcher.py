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
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import urllib3
from tuf.api import exceptions
from tuf.ngclient.fetcher import FetcherInterface
from tuf.ngclient.urllib3_fetcher import Urllib3Fetcher

from edgeship.errors import OtaError

_CHUNK = 64 * 1024
#: The current poll's deadline (time.monotonic), for the fetcher DeadlineFetcher wraps.
_poll_deadline: ContextVar[float] = ContextVar("edgeship_poll_deadline", default=float("inf"))


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
        #: The file this poll requested last: what a refusal of python-tuf's concerns.
        self.last_url: str | None = None

    def start_poll(self) -> None:
        self.poll_deadline = self.clock() + self.limits.poll_seconds
        self.last_url = None

    def _fetch(self, url: str) -> Iterator[bytes]:
        self.last_url = url
        start = self.clock()
        self._check(url, start, start, 0)
        remaining = self.poll_deadline - start
        token = _poll_deadline.set(time.monotonic() + remaining)  # for HttpFetcher's watch
        try:
            chunks = self.inner.fetch(url)
        finally:
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
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


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
        reason = error.reason if isinstance(error, urllib3.exceptions.MaxRetryError) else error
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


class FileFetcher(FetcherInterface):
    """Serve ``file://`` URLs, mapping a missing file to HTTP 404 like a bucket would
    (ngclient relies on 404 to know it has reached the newest root)."""

    def _fetch(self, url: str) -> Iterator[bytes]:
        parsed = urllib.parse.urlparse(url)
        path = urllib.parse.unquote(parsed.path)
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError:
            raise exceptions.DownloadHTTPError(f"{url} not found", 404) from None
        except IsADirectoryError:
            raise exceptions.DownloadHTTPError(f"{url} is a directory", 403) from None
        return self._chunks(f)

    @staticmethod
    def _chunks(f) -> Iterator[bytes]:
        with f:
            while chunk := f.read(_CHUNK):
                yield chunk


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
        return FileFetcher()
    if scheme in ("http", "https"):
        return HttpFetcher(limits)
    raise OtaError(f"devices poll http(s):// or file:// repositories, not {url}; give them the "
                   "bucket's public https:// URL")


def normalize_repo_url(url: str) -> str:
    """Plain paths become file:// URLs; no trailing slash."""
    if "://" not in url:
        url = "file://" + os.path.abspath(url)
    return url.rstrip("/")
