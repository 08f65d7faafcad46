"""How a device reaches the repository: plain GETs only.

``http(s)://`` uses python-tuf's own urllib3 fetcher (a public-read bucket or CDN, no S3 SDK);
``file://`` reads a folder (an SD card, an NFS mount, tests). :class:`CountingFetcher` wraps
either and counts requests and bytes: firmware on a metered cellular link can report what its
polls cost, and the benchmarks measure the idle-poll budget with it.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterator

from tuf.api import exceptions
from tuf.ngclient.fetcher import FetcherInterface

from edgeship.errors import OtaError

_CHUNK = 64 * 1024


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


def fetcher_for(url: str) -> FetcherInterface | None:
    """A fetcher for ``url``'s scheme; None means python-tuf's default (urllib3, HTTP)."""
    scheme = urllib.parse.urlparse(url).scheme
    if scheme in ("", "file"):
        return FileFetcher()
    if scheme in ("http", "https"):
        return None
    raise OtaError(f"devices poll http(s):// or file:// repositories, not {url}; give them the "
                   "bucket's public https:// URL")


def normalize_repo_url(url: str) -> str:
    """Plain paths become file:// URLs; no trailing slash."""
    if "://" not in url:
        url = "file://" + os.path.abspath(url)
    return url.rstrip("/")
