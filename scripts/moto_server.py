"""Run a moto server on a loopback port for shipgate's tests and local sandbox.

Prints `PORT <n>` once the server answers, then serves until its standard input closes: when the
process that started it exits for any reason (even SIGKILL), the pipe closes and this server stops,
so no moto process is ever left behind.

Usage: python scripts/moto_server.py [PORT]   (PORT 0, the default, picks a free port)

Requests are handled one at a time (threads still do the socket I/O). moto applies a
TransactWriteItems item by item and, when one item fails, restores a copy of the whole table taken
when that transaction began — without a lock, so under concurrency a failing transaction can undo
another request's committed writes. DynamoDB transactions are isolated; serializing requests gives
the tests that semantics.
"""

import os
import sys
import threading


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    try:
        from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server
    except ImportError as exc:  # pragma: no cover - reported to the caller
        print(f"ERROR moto is not installed: {exc}", flush=True)
        sys.exit(3)
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialized(environ, start_response):
        with lock:
            # the whole response is produced inside the lock
            return list(app(environ, start_response))

    try:
        server = make_server("127.0.0.1", port, serialized, True, request_handler=MotoRequestHandler)
    except OSError as exc:
        print(f"ERROR cannot listen on 127.0.0.1:{port}: {exc}", flush=True)
        sys.exit(4)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"PORT {server.server_address[1]}", flush=True)

    def watch_parent() -> None:
        sys.stdin.read()  # returns at EOF: the parent is gone or closed the pipe
        os._exit(0)

    watcher = threading.Thread(target=watch_parent, daemon=True)
    watcher.start()
    watcher.join()


if __name__ == "__main__":
    main()
