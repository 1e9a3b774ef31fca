"""A small AWS Lambda Runtime API emulator for benchmarks (Python standard library only).

It implements what a Lambda runtime client talks to, on a loopback port:

    GET  /2018-06-01/runtime/invocation/next              (long poll: blocks until an event)
    POST /2018-06-01/runtime/invocation/{id}/response
    POST /2018-06-01/runtime/invocation/{id}/error
    POST /2018-06-01/runtime/init/error

with the standard headers on `next` (Lambda-Runtime-Aws-Request-Id, Lambda-Runtime-Deadline-Ms,
Lambda-Runtime-Invoked-Function-Arn, Lambda-Runtime-Trace-Id), and starts one function process
with the standard Lambda environment. It measures:

- Init Duration: from just before the process is exec'd to its first `next` request (what Lambda
  reports as "Init Duration" for a custom runtime), and the CPU time the process used until then
  (its live threads' /proc/<pid>/task/*/schedstat; less sensitive to a loaded machine);
- per invocation: from handing the event to the runtime to receiving its response (Lambda's
  "Duration");
- CPU time per invocation: utime + stime from /proc/<pid>/stat (clock ticks: average many);
- peak RSS: VmHWM from /proc/<pid>/status.

Used as a library by bench/bench.py; `python bench/runtime_emulator.py --help` runs one binary
with one event file by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

PREFIX = "/2018-06-01/runtime"
_CLK_TCK = os.sysconf("SC_CLK_TCK")
ACCOUNT = "123456789012"
_INVOCATION_RE = re.compile(r"^/2018-06-01/runtime/invocation/([^/]+)/(response|error)$")


@dataclass
class Invocation:
    request_id: str
    payload: bytes
    submitted: float = 0.0  # time.perf_counter() when invoke() was called
    dispatched: float = 0.0  # when `next` answered with this event
    finished: float = 0.0  # when the response or error arrived
    kind: str = ""  # "response" | "error" | "timeout"
    body: bytes = b""
    error_type: Optional[str] = None
    cpu_ms: Optional[float] = None  # CPU time the function process used meanwhile (FunctionProcess)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def duration_ms(self) -> float:
        return (self.finished - self.submitted) * 1000.0

    def json(self):
        return json.loads(self.body) if self.body else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the runtime clients expect
    disable_nagle_algorithm = True  # TCP_NODELAY: no 40 ms delayed-ACK stalls
    wbufsize = -1  # headers and body leave in one write (flushed at the end of each answer)
    server: "_Server"

    def log_message(self, *args):  # quiet
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, body: bytes = b"", headers: Optional[dict] = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if "Content-Type" not in (headers or {}):
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self):  # noqa: N802
        api = self.server.api
        if self.path != PREFIX + "/invocation/next":
            self._send(404, b'{"errorMessage":"not found","errorType":"NotFound"}')
            return
        api._note_next()
        inv = api._queue.get()
        if inv is None:  # shutting down: keep the runtime parked until it is killed
            self.close_connection = True
            return
        inv.dispatched = time.perf_counter()
        deadline_ms = int(time.time() * 1000) + api.timeout_s * 1000
        trace = "Root=1-%08x-%s;Parent=%s;Sampled=0" % (
            int(time.time()),
            uuid.uuid4().hex[:24],
            uuid.uuid4().hex[:16],
        )
        self._send(
            200,
            inv.payload,
            {
                "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": api.function_arn,
                "Lambda-Runtime-Trace-Id": trace,
            },
        )

    def do_POST(self):  # noqa: N802
        api = self.server.api
        body = self._body()
        if self.path == PREFIX + "/init/error":
            api.init_error = (self.headers.get("Lambda-Runtime-Function-Error-Type"), body)
            api._init_failed.set()
            self._send(202, b'{"status":"OK"}')
            return
        m = _INVOCATION_RE.match(self.path)
        if not m:
            self._send(404, b'{"errorMessage":"not found","errorType":"NotFound"}')
            return
        request_id, kind = m.group(1), m.group(2)
        with api._lock:
            inv = api._inflight.pop(request_id, None)
        if inv is None:
            self._send(
                400,
                b'{"errorMessage":"unknown or already answered request id","errorType":"InvalidRequestID"}',
            )
            return
        inv.finished = time.perf_counter()
        inv.kind = kind
        inv.body = body
        if kind == "error":
            inv.error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
        self._send(202, b'{"status":"OK"}')
        inv.done.set()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # a runtime or SDK client that went away mid-request (e.g. a stopped process)


class RuntimeApi:
    """One Runtime API endpoint (one Lambda execution environment)."""

    def __init__(self, function_name: str, timeout_s: int = 30):
        self.function_name = function_name
        self.function_arn = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:{function_name}"
        self.timeout_s = timeout_s
        self._queue: "queue.Queue[Optional[Invocation]]" = queue.Queue()
        self._inflight: dict[str, Invocation] = {}
        self._lock = threading.Lock()
        self._first_next = threading.Event()
        self._init_failed = threading.Event()
        self.first_next_at: Optional[float] = None
        self.init_error = None
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.api = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def _note_next(self) -> None:
        if self.first_next_at is None:
            self.first_next_at = time.perf_counter()
            self._first_next.set()

    def wait_ready(self, timeout: float) -> bool:
        """True once the runtime asked for its first event; False on init error or timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._first_next.wait(0.01):
                return True
            if self._init_failed.is_set():
                return False
        return False

    def invoke(self, payload, timeout: Optional[float] = None) -> Invocation:
        if not isinstance(payload, (bytes, bytearray)):
            payload = json.dumps(payload).encode()
        inv = Invocation(request_id=str(uuid.uuid4()), payload=bytes(payload))
        with self._lock:
            self._inflight[inv.request_id] = inv
        inv.submitted = time.perf_counter()
        self._queue.put(inv)
        if not inv.done.wait(timeout if timeout is not None else self.timeout_s):
            with self._lock:
                self._inflight.pop(inv.request_id, None)
            inv.kind = "timeout"
            inv.finished = time.perf_counter()
        return inv

    def close(self) -> None:
        self._queue.put(None)
        self._server.shutdown()
        self._server.server_close()


def lambda_env(function_name: str, api: str, extra: Optional[dict] = None, memory_mb: int = 128) -> dict:
    """The environment Lambda gives a function (plus `extra`, e.g. SHIPGATE_* and endpoints)."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "AWS_LAMBDA_RUNTIME_API": api,
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "INFO",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex,
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "_X_AMZN_TRACE_ID": "",
    }
    env.update(extra or {})
    return env


def vm_hwm_kib(pid: int) -> Optional[int]:
    """Peak resident set size (VmHWM) of a live process, in KiB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class FunctionProcess:
    """A function binary (or any runtime command) running against its own RuntimeApi."""

    def __init__(self, name: str, command: list, extra_env: dict, log_path: str, cwd: Optional[str] = None,
                 memory_mb: int = 128, ready_timeout: float = 30.0):
        self.name = name
        self.api = RuntimeApi(f"shipgate-{name}")
        env = lambda_env(f"shipgate-{name}", self.api.address, extra_env, memory_mb)
        self._log = open(log_path, "ab")
        self.started = started = time.perf_counter()
        self.proc = subprocess.Popen(command, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log, close_fds=True)
        self.ready = self.api.wait_ready(ready_timeout)
        self.init_ms = (self.api.first_next_at - started) * 1000.0 if self.ready else None
        # the process now waits in its long poll for `next`: the CPU it used so far is its init's
        self.init_cpu_ms = self.thread_cpu_ns() / 1e6 if self.ready else None
        if not self.ready:
            err = self.api.init_error
            self.stop()
            raise RuntimeError(f"{name} did not reach `next` (init error: {err!r}; log: {log_path})")

    def invoke(self, payload, timeout: Optional[float] = None) -> Invocation:
        before = self.cpu_seconds()
        inv = self.api.invoke(payload, timeout)
        if inv.kind == "timeout":
            raise RuntimeError(f"{self.name}: invocation timed out")
        inv.cpu_ms = (self.cpu_seconds() - before) * 1000.0  # clock-tick resolution: average many
        return inv

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far (all its threads, live or exited)."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / _CLK_TCK
        except (OSError, IndexError, ValueError):
            return 0.0

    def thread_cpu_ns(self) -> int:
        """CPU time of the process's live threads in ns (/proc/<pid>/task/*/schedstat, first field:
        nanosecond resolution, unlike the clock ticks of /proc/<pid>/stat)."""
        total = 0
        try:
            tasks = os.listdir(f"/proc/{self.proc.pid}/task")
        except OSError:
            return 0
        for tid in tasks:
            try:
                with open(f"/proc/{self.proc.pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, IndexError, ValueError):
                pass
        return total

    def peak_rss_kib(self) -> Optional[int]:
        return vm_hwm_kib(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.api.close()
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def cold_starts(binary: str, events: list, extra: dict, rounds: int) -> int:
    """`--cold N`: N cold starts of one binary, each followed by its events once; medians of Init
    Duration, Init CPU time (schedstat), the first invocation and the fields of the function's
    `cold start` log line (shared::runtime::bootstrap; absent for the hello-world)."""
    import tempfile

    name = os.path.basename(binary)
    rows = []
    load_before = os.getloadavg()
    for _ in range(rounds):
        with tempfile.NamedTemporaryFile(prefix=f"cold-{name}-", suffix=".log", delete=False) as log:
            log_path = log.name
        with FunctionProcess(name, binary.split(), extra, log_path) as f:
            row = {"init_ms": f.init_ms, "init_cpu_ms": f.init_cpu_ms}
            for i, path in enumerate(events):
                inv = f.invoke(open(path, "rb").read())
                if i == 0:
                    row["first_invocation_ms"] = inv.duration_ms
                    row["first_kind"] = inv.kind
        with open(log_path, errors="replace") as lf:
            for line in lf:
                if "cold start" not in line:
                    continue
                try:
                    fields = json.loads(line)
                except ValueError:
                    continue
                for k, v in fields.items():
                    if k.endswith("_us") and isinstance(v, (int, float)):
                        row[k] = v
        os.unlink(log_path)
        rows.append(row)
    load_after = os.getloadavg()
    keys = ["init_ms", "init_cpu_ms", "first_invocation_ms"] + sorted(
        {k for r in rows for k in r if k.endswith("_us")}
    )
    print(f"{name}: {rounds} cold starts; load average {load_before[0]:.2f} -> {load_after[0]:.2f}")
    for k in keys:
        vals = [r.get(k) for r in rows]
        m = _median(vals)
        present = [v for v in vals if v is not None]
        if m is None:
            continue
        print(f"  {k:<22} median {m:9.3f}  min {min(present):9.3f}  max {max(present):9.3f}")
    kinds = sorted({r.get("first_kind") for r in rows if r.get("first_kind")})
    if kinds:
        print(f"  first invocation answered: {', '.join(kinds)}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description="Run one function binary under the Runtime API emulator.")
    p.add_argument("binary", help="function binary (e.g. target/release/webhook) or a command")
    p.add_argument("event", nargs="*", help="event JSON file(s), invoked in order (none with --cold: init only)")
    p.add_argument("--env-file", help="KEY=VALUE lines (e.g. the sandbox's dev.env)")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--cold", type=int, default=0,
                   help="N cold starts (each invoked with the events once): print medians of Init "
                        "Duration, Init CPU time, the first invocation and the `cold start` line's fields")
    a = p.parse_args()
    extra = {}
    if a.env_file:
        for line in open(a.env_file):
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                extra[k] = v
    if a.cold > 0:
        return cold_starts(a.binary, a.event, extra, a.cold)
    if not a.event:
        p.error("name at least one event file (or --cold N)")
    with FunctionProcess(os.path.basename(a.binary), a.binary.split(), extra, "/dev/stderr") as f:
        print(f"init {f.init_ms:.1f} ms")
        for _ in range(a.repeat):
            for path in a.event:
                inv = f.invoke(open(path, "rb").read())
                print(f"{path}: {inv.kind} {inv.duration_ms:.2f} ms {inv.body[:300]!r}")
        print(f"peak RSS {f.peak_rss_kib()} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
