"""Run a moto server on a loopback port for shipgate's tests and local sandbox.

Prints `PORT <n>` once the server answers, then serves until its standard input closes: when the
process that started it exits for any reason (even SIGKILL), the pipe closes and this server stops,
so no moto process is ever left behind.

Usage: python scripts/moto_server.py [PORT]   (PORT 0, the default, picks a free port)
"""

import os
import sys
import threading


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # pragma: no cover - reported to the caller
        print(f"ERROR moto is not installed: {exc}", flush=True)
        sys.exit(3)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    try:
        server.start()
    except OSError as exc:
        print(f"ERROR cannot listen on 127.0.0.1:{port}: {exc}", flush=True)
        sys.exit(4)
    _, actual = server.get_host_and_port()
    print(f"PORT {actual}", flush=True)

    def watch_parent() -> None:
        sys.stdin.read()  # returns at EOF: the parent is gone or closed the pipe
        os._exit(0)

    watcher = threading.Thread(target=watch_parent, daemon=True)
    watcher.start()
    watcher.join()


if __name__ == "__main__":
    main()
