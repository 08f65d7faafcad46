"""Downloads within deadlines (slow retrieval), and transport failures that say what happened."""

from __future__ import annotations

import threading
import time

import pytest
from tuf.api import exceptions

from edgeship.device.fetcher import DeadlineFetcher, HttpFetcher, TransferLimits
from edgeship.errors import OtaError
from tests.helpers.servers import ScriptedServer
from tests.helpers.threads import ended


class _Pieces:
    """An inner fetcher whose pieces each advance a fake clock."""

    def __init__(self, clock: list[float], pieces: list[tuple[float, bytes]]):
        self.clock, self.pieces = clock, pieces

    def fetch(self, url: str):
        for seconds, piece in self.pieces:
            self.clock[0] += seconds
            yield piece


def _fetcher(pieces, **limits) -> tuple[DeadlineFetcher, list[float]]:
    clock = [0.0]
    fetcher = DeadlineFetcher(_Pieces(clock, pieces), TransferLimits(**limits),
                              clock=lambda: clock[0])
    return fetcher, clock


def test_a_steady_download_passes_however_long_it_takes_within_the_file_deadline() -> None:
    fetcher, _ = _fetcher([(10.0, b"x" * 5000)] * 30, min_bytes_per_second=256)
    assert len(fetcher.download_bytes("http://b/model", 1 << 20)) == 150_000


def test_a_drip_below_the_minimum_rate_is_cut_off_after_the_grace_period() -> None:
    """Slow retrieval: one byte every few seconds keeps every socket read alive."""
    fetcher, clock = _fetcher([(3.0, b"{")] * 1000, min_bytes_per_second=256,
                              grace_seconds=30)
    with pytest.raises(exceptions.SlowRetrievalError, match="timestamp.json: 11 bytes in 33 s"):
        fetcher.download_bytes("http://b/metadata/timestamp.json", 16 * 1024)
    assert clock[0] == 33.0


def test_a_file_past_its_deadline_is_cut_off_even_at_a_good_rate() -> None:
    fetcher, _ = _fetcher([(1.0, b"x" * 4096)] * 100, file_seconds=60)
    with pytest.raises(exceptions.SlowRetrievalError, match="not complete after 60 s"):
        fetcher.download_bytes("http://b/model", 1 << 30)


def test_a_poll_has_one_deadline_over_all_its_files() -> None:
    fetcher, clock = _fetcher([(20.0, b"x" * 8192)], poll_seconds=50)
    fetcher.start_poll()
    fetcher.download_bytes("http://b/1", 1 << 20)
    fetcher.download_bytes("http://b/2", 1 << 20)
    with pytest.raises(exceptions.SlowRetrievalError, match="spent its 50 s"):
        fetcher.download_bytes("http://b/3", 1 << 20)
    fetcher.start_poll()  # the next poll starts afresh
    fetcher.download_bytes("http://b/4", 1 << 20)
    assert clock[0] == 80.0


@pytest.mark.parametrize("field, value", [("file_seconds", -1), ("poll_seconds", float("nan")),
                                          ("socket_seconds", 0), ("grace_seconds", "10")])
def test_limits_that_make_no_sense_are_refused(field: str, value: object) -> None:
    with pytest.raises(OtaError, match=field):
        TransferLimits(**{field: value})


# --------------------------------------------------------------------------- over real HTTP


@pytest.fixture
def serve():
    servers: list[ScriptedServer] = []

    def _serve(respond) -> ScriptedServer:
        servers.append(ScriptedServer(respond))
        return servers[-1]

    yield _serve
    for server in servers:
        server.close()


def _drip(stop: threading.Event, every: float = 0.05):
    def respond(handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        while not stop.is_set():
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(every)

    return respond


def _download(fetcher, url: str) -> object:
    """The download's bytes, or its error; fails (instead of hanging) if it never ends."""
    return ended(lambda: fetcher.download_bytes(url, 1 << 20))


def test_a_dripping_http_server_ends_in_slow_retrieval(serve) -> None:
    stop = threading.Event()
    server = serve(_drip(stop))
    limits = TransferLimits(grace_seconds=0.5, min_bytes_per_second=1000)
    error = _download(DeadlineFetcher(HttpFetcher(), limits),
                                f"{server.url}/metadata/timestamp.json")
    stop.set()
    assert isinstance(error, exceptions.SlowRetrievalError)
    assert "timestamp.json" in str(error) and "below the minimum average" in str(error)


def test_a_server_that_answers_nothing_ends_in_slow_retrieval(serve) -> None:
    stop = threading.Event()
    server = serve(lambda handler: stop.wait(60))
    error = _download(HttpFetcher(TransferLimits(socket_seconds=0.3)),
                                f"{server.url}/timestamp.json")
    stop.set()
    assert isinstance(error, exceptions.SlowRetrievalError)
    assert "timestamp.json: nothing received for 0.3 s" in str(error)


@pytest.mark.parametrize("where", ["headers", "chunk sizes"])
def test_a_drip_inside_one_read_is_cut_off_by_the_hard_deadline(serve, where: str) -> None:
    """A status line and then a header byte (or a chunk-size digit) every 0.1 s: ``http.client``
    reads on inside one call, no socket timeout fires, and only the watch ends it."""
    stop = threading.Event()

    def respond(handler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        if where == "chunk sizes":
            handler.wfile.write(b"Transfer-Encoding: chunked\r\n\r\n")
        handler.wfile.write(b"X-Drip: " if where == "headers" else b"")
        while not stop.is_set():
            handler.wfile.write(b"1")
            handler.wfile.flush()
            time.sleep(0.1)

    server = serve(respond)
    limits = TransferLimits(grace_seconds=0.5, socket_seconds=1, file_seconds=2,
                            min_bytes_per_second=1)
    error = _download(DeadlineFetcher(HttpFetcher(limits), limits),
                                f"{server.url}/timestamp.json")
    stop.set()
    assert isinstance(error, exceptions.SlowRetrievalError), repr(error)
    assert "timestamp.json" in str(error)


def test_an_unreachable_host_is_a_download_error_that_names_it() -> None:
    """python-tuf's own fetcher reports this as an empty SlowRetrievalError."""
    error = _download(HttpFetcher(), "http://127.0.0.1:9/metadata/timestamp.json")
    assert type(error) is exceptions.DownloadError
    assert str(error).startswith("http://127.0.0.1:9/metadata/timestamp.json: cannot connect: ")
    assert str(error).split("cannot connect: ")[1]


def test_a_body_cut_short_is_a_broken_transfer(serve) -> None:
    def respond(handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        handler.wfile.write(b"x" * 10)
        handler.close_connection = True

    server = serve(respond)
    error = _download(HttpFetcher(), f"{server.url}/timestamp.json")
    assert type(error) is exceptions.DownloadError
    assert "transfer broken off" in str(error)


def test_http_errors_keep_their_status_and_name_the_url(serve) -> None:
    server = serve(lambda handler: handler.send_error(404))
    error = _download(HttpFetcher(), f"{server.url}/metadata/timestamp.json")
    assert isinstance(error, exceptions.DownloadHTTPError) and error.status_code == 404
    assert str(error) == f"{server.url}/metadata/timestamp.json: HTTP 404"


def _answer(handler, body: bytes) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def test_redirects_are_followed(serve) -> None:
    def respond(handler) -> None:
        if handler.path == "/old":
            handler.send_response(302)
            handler.send_header("Location", "/new")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        else:
            _answer(handler, b"new")

    server = serve(respond)
    assert HttpFetcher().download_bytes(f"{server.url}/old", 100) == b"new"


def test_a_connect_timeout_is_an_unreachable_bucket_not_an_attack(monkeypatch) -> None:
    """Found in review: urllib3 files a connect timeout under its timeouts, so an offline
    cellular device was told `slow-retrieval` (a refusal) instead of an unreachable bucket."""
    import urllib3

    def blackholed(self):
        raise urllib3.exceptions.ConnectTimeoutError(self, "timed out")

    monkeypatch.setattr(urllib3.connection.HTTPConnection, "_new_conn", blackholed)
    error = _download(HttpFetcher(), "http://192.0.2.1/metadata/timestamp.json")
    assert type(error) is exceptions.DownloadError
    assert "cannot connect: timed out" in str(error)


def test_a_download_cut_off_never_goes_back_into_the_pool(serve) -> None:
    """Found in review: a half-read answer went back into the pool, and the next request on
    that connection failed."""
    stop = threading.Event()

    drip = _drip(stop)

    def respond(handler) -> None:
        if handler.path == "/slow":
            drip(handler)
        else:
            _answer(handler, b"ok")

    server = serve(respond)
    limits = TransferLimits(grace_seconds=0.3, min_bytes_per_second=1000, socket_seconds=2)
    fetcher = DeadlineFetcher(HttpFetcher(limits), limits)
    assert isinstance(_download(fetcher, f"{server.url}/slow"),
                      exceptions.SlowRetrievalError)
    stop.set()
    assert fetcher.download_bytes(f"{server.url}/fast", 10) == b"ok"
