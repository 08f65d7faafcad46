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

import os
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import urllib3
from tuf.api import exceptions
from tuf.ngclient.fetcher import FetcherInterface
from tuf.ngclient.urllib3_fetcher import Urllib3Fetcher

from edgeship.errors import OtaError

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class TransferLimits:
    """How long a device waits for the repository. The defaults suit a slow cellular link
    (a 10 MB model at 2G's ~10 KB/s takes ~17 min) while a server dripping bytes is cut
    off within about a minute."""

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
        return self._limited(url, start, self.inner.fetch(url))

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


class HttpFetcher(Urllib3Fetcher):
    """python-tuf's urllib3 fetcher (its proxy and User-Agent handling), reading each response
    as bytes arrive (``read1``) so that :class:`DeadlineFetcher` sees a trickle as it comes,
    and turning every transport failure into a ``DownloadError`` that names the URL."""

    def __init__(self, socket_seconds: float = TransferLimits.socket_seconds):
        super().__init__(socket_timeout=socket_seconds)  # type: ignore[arg-type]

    #: Redirects are followed (a CDN may send one); nothing is retried within a poll: the
    #: agent's next poll, with backoff, is the retry.
    RETRIES = urllib3.Retry(total=5, connect=0, read=0, status=0, other=0, redirect=5)

    def _fetch(self, url: str) -> Iterator[bytes]:
        try:
            response = self._proxy_env.request(
                "GET", url, preload_content=False, retries=self.RETRIES,
                timeout=urllib3.Timeout(connect=self.socket_timeout, read=self.socket_timeout))
        except urllib3.exceptions.HTTPError as e:
            raise self._failure(url, e, "cannot connect") from None
        if not 200 <= response.status < 300:
            response.release_conn()
            raise exceptions.DownloadHTTPError(f"{url}: HTTP {response.status}",
                                               response.status)
        return self._pieces(url, response)

    def _pieces(self, url: str, response) -> Iterator[bytes]:
        try:
            while piece := response.read1(_CHUNK):
                yield piece
        except urllib3.exceptions.HTTPError as e:
            raise self._failure(url, e, "transfer broken off") from None
        finally:
            response.release_conn()

    def _failure(self, url: str, error: Exception, what: str) -> exceptions.DownloadError:
        """A refused connection, a failed DNS lookup or a broken transfer is a download
        error; only silence past the socket timeout is a slow retrieval. (urllib3 files a
        refused connection under its timeouts, which is why python-tuf's own fetcher reports
        an unreachable host as an empty ``SlowRetrievalError``.)"""
        reason = error.reason if isinstance(error, urllib3.exceptions.MaxRetryError) else error
        if isinstance(reason, urllib3.exceptions.NewConnectionError):
            return exceptions.DownloadError(f"{url}: {what}: {_why(reason)}")
        if isinstance(reason, urllib3.exceptions.TimeoutError):
            return exceptions.SlowRetrievalError(
                f"{url}: nothing received for {self.socket_timeout:g} s")
        return exceptions.DownloadError(f"{url}: {what}: {_why(reason)}")


def _why(error: BaseException) -> str:
    """urllib3's message without the object reprs it starts with."""
    text = str(error)
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
        return HttpFetcher((limits or TransferLimits()).socket_seconds)
    raise OtaError(f"devices poll http(s):// or file:// repositories, not {url}; give them the "
                   "bucket's public https:// URL")


def normalize_repo_url(url: str) -> str:
    """Plain paths become file:// URLs; no trailing slash."""
    if "://" not in url:
        url = "file://" + os.path.abspath(url)
    return url.rstrip("/")
