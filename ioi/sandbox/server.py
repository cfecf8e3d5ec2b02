"""Serve a WSGI app over real HTTP on loopback, in a background thread."""

from __future__ import annotations

import threading

from werkzeug.serving import make_server


class BackgroundServer:
    """A threaded HTTP server on 127.0.0.1 (port 0 picks a free one); use as a context manager."""

    def __init__(self, wsgi_app, host: str = "127.0.0.1", port: int = 0):
        self._server = make_server(host, port, wsgi_app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> BackgroundServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
