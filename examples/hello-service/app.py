"""hello-service: the smallest service shipgate deploys.

GET /health -> {"status": "ok", "version": "<commit>"}; the commit is baked into the image at
build time (Dockerfile build argument COMMIT -> environment variable APP_VERSION).
Standard library only.
"""

import json
import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION_VARIABLE = "APP_VERSION"


def health_body() -> bytes:
    version = os.environ.get(VERSION_VARIABLE) or "unknown"
    return json.dumps({"status": "ok", "version": version}).encode()


class Handler(BaseHTTPRequestHandler):
    server_version = "hello-service"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self._send(200, "application/json", health_body())
        elif path == "/":
            environment = os.environ.get("DEPLOY_ENVIRONMENT", "local")
            self._send(200, "text/plain; charset=utf-8", f"hello from {environment}\n".encode())
        else:
            self._send(404, "application/json", b'{"error":"not found"}')

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_request(self, code="-", size="-") -> None:
        # One line per request on stdout, without the client address or the query string.
        if getattr(self.server, "log_requests", True):
            print(f'{self.command} {self.path.split("?", 1)[0]} {code}', flush=True)


def make_server(port: int, log_requests: bool = True) -> ThreadingHTTPServer:
    # HOST: the address to listen on (all interfaces in a container; loopback in `shipgate dev`)
    server = ThreadingHTTPServer((os.environ.get("HOST", "0.0.0.0"), port), Handler)
    server.daemon_threads = True
    server.log_requests = log_requests
    return server


def main() -> None:
    server = make_server(int(os.environ.get("PORT", "8080")))

    def stop(_signum, _frame) -> None:
        # ECS sends SIGTERM before stopping a task: finish in-flight requests, then exit.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"hello-service {os.environ.get(VERSION_VARIABLE) or 'unknown'} listening on :{server.server_port}", flush=True)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
