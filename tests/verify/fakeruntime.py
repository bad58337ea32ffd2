"""A small stdlib HTTP server that speaks the SageMaker runtime API's InvokeEndpoint path, for the
tests of regression evaluation, load statistics and reports that do not need the whole local cloud
(the end-to-end tests use the real local cloud)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Handler = Callable[[str, bytes, str], tuple[int, bytes]]  # (endpoint, body, content type) -> (status, body)


def echo_model(delay: float = 0.0) -> Handler:
    """Answers ``{"echo": <request JSON>}``; a body without JSON gets a ModelError (424)."""

    def handle(endpoint: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        if delay:
            time.sleep(delay)
        try:
            document = json.loads(body)
        except ValueError:
            return 424, json.dumps({"ErrorCode": "CLIENT_ERROR_FROM_MODEL", "OriginalStatusCode": 400,
                                    "OriginalMessage": "not JSON", "message": "Received client error (400)"}).encode()
        return 200, json.dumps({"echo": document, "endpoint": endpoint}).encode()

    return handle


@dataclass
class FakeRuntime:
    url: str
    handler: Handler
    requests: int = 0
    signed: int = 0


@contextmanager
def fake_runtime(handler: Handler) -> Iterator[FakeRuntime]:
    """Serve ``handler`` on 127.0.0.1 at a free port for the duration of the block."""
    state = FakeRuntime(url="", handler=handler)
    lock = threading.Lock()

    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else delayed ACKs add 40 ms to every answer

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            parts = self.path.split("/")
            with lock:
                state.requests += 1
                if "AWS4-HMAC-SHA256" in (self.headers.get("Authorization") or ""):
                    state.signed += 1
            if len(parts) != 4 or parts[1] != "endpoints" or parts[3] != "invocations":
                status, out = 404, b'{"message": "unknown path"}'
            else:
                status, out = state.handler(parts[2], body, self.headers.get("Content-Type") or "")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if status == 424:
                self.send_header("x-amzn-ErrorType", "ModelError:http://internal.amazon.com/coral/com.amazon.sagemaker/")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    class _Server(ThreadingHTTPServer):
        request_queue_size = 128  # many users connect at once

    server = _Server(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
