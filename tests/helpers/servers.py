"""A scripted HTTP server on 127.0.0.1: every GET is answered by a function of the test's."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable


class ScriptedServer:
    """``respond(handler)`` answers each GET (with ``handler.send_response`` etc.); a client
    that hangs up mid-answer ends that answer quietly."""

    def __init__(self, respond: Callable[[http.server.BaseHTTPRequestHandler], None]):
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802 - http.server API
                try:
                    respond(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
