"""A counting HTTP proxy in front of the local AWS (moto), for benchmarks.

Functions get AWS_ENDPOINT_URL=<this proxy>; every request is forwarded unchanged to moto and
tallied per service and operation:

- service: the SigV4 credential scope of the Authorization header (`.../<region>/<service>/aws4_request`);
- operation: `X-Amz-Target` (JSON protocols: DynamoDB, CodeBuild, ECS, ECR, Secrets Manager),
  else the `Action` form/query parameter (query protocol: SNS), else the URL path.

For DynamoDB it also sums, for successful requests:
- items written: PutItem / UpdateItem / DeleteItem = 1 each, TransactWriteItems = its Put, Update and
  Delete items (ConditionCheck items are counted separately), BatchWriteItem = its requests;
- write request units (WRU, = WCU on provisioned tables): ceil(item size / 1 KB) per item written,
  x2 inside TransactWriteItems (prepare + commit); the item size is the larger of the item before
  and after the write (as DynamoDB bills it), read from moto around the write without being counted;
  plus the index writes (`wru_indexes`): for each GSI/LSI (from DescribeTable) an item that enters,
  leaves or changes in the index costs ceil(projected size / 1 KB), a changed index key twice
  (delete + put), as documented for global secondary indexes;
- read request units (RRU): ceil(returned size / 4 KB), halved for eventually consistent reads,
  x2 for TransactGetItems.
Conditional writes that fail (HTTP 400) are tallied as `failed` (DynamoDB still bills them).

Also records (start, end, service:operation, status, upstream seconds) of every request so the caller can attribute AWS
time to invocations. Runs in a thread of the caller (bench/bench.py): `AwsProxy(moto_url).start()`.
"""

from __future__ import annotations

import gzip
import http.client
import json
import math
import re
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

_SCOPE_RE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}


def attr_size(value: dict) -> int:
    """Size in bytes of one DynamoDB AttributeValue (DynamoDB's documented item-size rules)."""
    (t, v), = value.items()
    if t == "S":
        return len(v.encode())
    if t == "N":
        digits = v.lstrip("-").replace(".", "").lstrip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if t == "B":
        return len(v) * 3 // 4
    if t in ("BOOL", "NULL"):
        return 1
    if t == "SS":
        return sum(len(s.encode()) for s in v)
    if t == "NS":
        return sum(attr_size({"N": n}) for n in v)
    if t == "BS":
        return sum(len(b) * 3 // 4 for b in v)
    if t == "L":
        return 3 + sum(1 + attr_size(x) for x in v)
    if t == "M":
        return 3 + sum(1 + len(k.encode()) + attr_size(x) for k, x in v.items())
    return 0


def item_size(item: Optional[dict]) -> int:
    if not item:
        return 0
    return sum(len(k.encode()) + attr_size(v) for k, v in item.items())


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with getattr(self, "lock", threading.Lock()):
            self.calls = Counter()  # "service:Operation" -> n
            self.failed = Counter()  # non-2xx answers
            self.ddb = Counter()  # items_written, wru, rru, condition_checks
            self.ddb_items = defaultdict(list)  # operation -> [item sizes written]
            self.spans = []  # (start, end, "service:Operation", status)

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "calls": dict(self.calls),
                "failed": dict(self.failed),
                "dynamodb": dict(self.ddb),
                "dynamodb_item_sizes": {k: list(v) for k, v in self.ddb_items.items()},
                "spans": list(self.spans),
            }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # TCP_NODELAY: no 40 ms delayed-ACK stalls
    wbufsize = -1  # headers and body leave in one write (flushed at the end of each answer)
    server: "_Server"

    def log_message(self, *args):
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(out)
                out.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _upstream(self) -> http.client.HTTPConnection:
        local = self.server.local
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.server.upstream_host, self.server.upstream_port, timeout=60)
            local.conn = conn
        return conn

    def _forward(self, method: str, path: str, headers: dict, body: bytes):
        for attempt in range(2):
            conn = self._upstream()
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                return resp.status, resp.getheaders(), data
            except (http.client.HTTPException, OSError):
                conn.close()
                self.server.local.conn = None
                if attempt:
                    raise
        raise RuntimeError("unreachable")

    def _handle(self):
        start = time.perf_counter()
        body = self._read_body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        headers["Content-Length"] = str(len(body))
        auth = self.headers.get("Authorization", "")
        m = _SCOPE_RE.search(auth)
        service = m.group(2) if m else "unsigned"
        self.server.local.region = m.group(1) if m else "us-east-1"  # moto is region-scoped
        target = self.headers.get("X-Amz-Target")
        if target:
            op = target.rsplit(".", 1)[-1]
        else:
            params = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            if "form-urlencoded" in self.headers.get("Content-Type", ""):
                params.update(urllib.parse.parse_qs(body.decode(errors="replace")))
            op = (params.get("Action") or [None])[0] or (self.command + " " + urllib.parse.urlsplit(self.path).path)
        name = f"{service}:{op}"
        proxy = self.server
        req_json = None
        if service == "dynamodb":
            try:
                req_json = json.loads(body or b"{}")
            except ValueError:
                req_json = None
        before = proxy.images_before(op, req_json) if req_json is not None else None

        upstream_start = time.perf_counter()
        status, resp_headers, data = self._forward(self.command, self.path, headers, body)
        upstream_end = time.perf_counter()

        if req_json is not None:
            plain = data
            if dict((k.lower(), v) for k, v in resp_headers).get("content-encoding") == "gzip":
                plain = gzip.decompress(data)
            proxy.account_dynamodb(op, req_json, status, plain, before)
        end = time.perf_counter()
        with proxy.tally.lock:  # before answering, so a caller that got its answer sees the call counted
            proxy.tally.calls[name] += 1
            if status >= 300:
                proxy.tally.failed[name] += 1
            # the whole time the function waited on this call (incl. the proxy's own accounting)
            proxy.tally.spans.append((start, end, name, status, upstream_end - upstream_start))
        self.send_response(status)
        for k, v in resp_headers:
            if k.lower() not in _HOP and k.lower() not in ("content-length", "date", "server"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # a runtime or SDK client that went away mid-request (e.g. a stopped process)

    # ---- DynamoDB accounting ---------------------------------------------------------------
    def _auth(self) -> str:
        return ("AWS4-HMAC-SHA256 Credential=testing/20260101/%s/dynamodb/aws4_request, SignedHeaders=host, Signature=0"
                % self.local.region)

    def _raw_get(self, table: str, key: dict) -> Optional[dict]:
        """GetItem straight to moto (not counted): the item's current size for WRU accounting."""
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=30)
        try:
            conn.request(
                "POST", "/",
                body=json.dumps({"TableName": table, "Key": key, "ConsistentRead": True}),
                headers={
                    "Content-Type": "application/x-amz-json-1.0",
                    "X-Amz-Target": "DynamoDB_20120810.GetItem",
                    "Authorization": self._auth(),
                },
            )
            resp = conn.getresponse()
            out = json.loads(resp.read() or b"{}")
            return out.get("Item")
        except (OSError, ValueError, http.client.HTTPException):
            return None
        finally:
            conn.close()

    def _key_of(self, table: str, item: dict) -> dict:
        return {k: item[k] for k in self.key_names.get(table, ("pk", "sk")) if k in item}

    def _writes(self, op: str, req: dict):
        """(kind, table, key, new item or None, transactional) for each item a write request touches."""
        if op == "PutItem":
            yield "Put", req["TableName"], self._key_of(req["TableName"], req["Item"]), req["Item"], False
        elif op == "UpdateItem":
            yield "Update", req["TableName"], req["Key"], None, False
        elif op == "DeleteItem":
            yield "Delete", req["TableName"], req["Key"], None, False
        elif op == "TransactWriteItems":
            for ti in req.get("TransactItems", []):
                (kind, spec), = ti.items()
                table = spec["TableName"]
                if kind == "Put":
                    yield "Put", table, self._key_of(table, spec["Item"]), spec["Item"], True
                else:
                    yield kind, table, spec["Key"], None, True
        elif op == "BatchWriteItem":
            for table, reqs in req.get("RequestItems", {}).items():
                for r in reqs:
                    if "PutRequest" in r:
                        item = r["PutRequest"]["Item"]
                        yield "Put", table, self._key_of(table, item), item, False
                    elif "DeleteRequest" in r:
                        yield "Delete", table, r["DeleteRequest"]["Key"], None, False

    def _indexes(self, table: str) -> list:
        """[(name, key attribute names, projection)] of the table's GSIs and LSIs (cached)."""
        if table not in self.index_cache:
            conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=30)
            try:
                conn.request("POST", "/", body=json.dumps({"TableName": table}), headers={
                    "Content-Type": "application/x-amz-json-1.0",
                    "X-Amz-Target": "DynamoDB_20120810.DescribeTable",
                    "Authorization": self._auth(),
                })
                desc = json.loads(conn.getresponse().read() or b"{}").get("Table", {})
            finally:
                conn.close()
            self.key_names[table] = tuple(k["AttributeName"] for k in desc.get("KeySchema", [])) or ("pk", "sk")
            out = []
            for idx in desc.get("GlobalSecondaryIndexes", []) + desc.get("LocalSecondaryIndexes", []):
                out.append((idx["IndexName"], tuple(k["AttributeName"] for k in idx["KeySchema"]), idx.get("Projection", {})))
            self.index_cache[table] = out
        return self.index_cache[table]

    def _projected(self, table: str, item: dict, keys: tuple, projection: dict) -> int:
        kind = projection.get("ProjectionType", "ALL")
        if kind == "ALL":
            return item_size(item)
        names = set(self.key_names.get(table, ())) | set(keys)
        if kind == "INCLUDE":
            names |= set(projection.get("NonKeyAttributes", []))
        return item_size({k: v for k, v in item.items() if k in names})

    def images_before(self, op: str, req: dict):
        if op not in ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"):
            return None
        try:
            for table in {w[1] for w in self._writes(op, req)}:
                self._indexes(table)
            return [self._raw_get(table, key) for _, table, key, _, _ in self._writes(op, req)]
        except (KeyError, ValueError, OSError):
            return None

    def account_dynamodb(self, op: str, req: dict, status: int, data: bytes, before) -> None:
        t = self.tally
        if op in ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"):
            writes = list(self._writes(op, req))
            if status >= 300:
                with t.lock:
                    t.ddb["failed_write_requests"] += 1
                    t.ddb["failed_write_items"] += sum(1 for w in writes if w[0] != "ConditionCheck")
                return
            before = before or [None] * len(writes)
            rows = []
            for i, (kind, table, key, new_item, tx) in enumerate(writes):
                old = before[i]
                if kind == "ConditionCheck":
                    rows.append((kind, max(1, math.ceil(item_size(old) / 1024)) * 2, 0, item_size(old)))
                    continue
                new = new_item if kind == "Put" else (None if kind == "Delete" else self._raw_get(table, key))
                size = max(item_size(old), item_size(new))
                units = max(1, math.ceil(size / 1024)) * (2 if tx else 1)
                # index writes: an item entering, leaving or changing in an index costs one write
                # (rounded up to 1 KB of its projection); a changed index key costs two (delete + put)
                gsi_units = 0
                for _, keys, projection in self._indexes(table):
                    bk = tuple(old.get(k, {}).get("S", old.get(k, {}).get("N")) for k in keys) if old and all(k in old for k in keys) else None
                    ak = tuple(new.get(k, {}).get("S", new.get(k, {}).get("N")) for k in keys) if new and all(k in new for k in keys) else None
                    ob = self._projected(table, old, keys, projection) if bk else 0
                    nb = self._projected(table, new, keys, projection) if ak else 0
                    if bk and ak and bk == ak:
                        if old != new:
                            gsi_units += max(1, math.ceil(nb / 1024))
                    else:
                        if bk:
                            gsi_units += max(1, math.ceil(ob / 1024))
                        if ak:
                            gsi_units += max(1, math.ceil(nb / 1024))
                rows.append((kind, units, gsi_units, size))
            with t.lock:
                for kind, units, gsi_units, size in rows:
                    if kind == "ConditionCheck":
                        t.ddb["condition_checks"] += 1
                        t.ddb["condition_check_wru"] += units
                        continue
                    t.ddb["items_written"] += 1
                    t.ddb["wru_table"] += units
                    t.ddb["wru_indexes"] += gsi_units
                    t.ddb["wru"] += units + gsi_units
                    t.ddb_items[op].append(size)
        elif op in ("GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems") and status < 300:
            try:
                out = json.loads(data or b"{}")
            except ValueError:
                return
            if op == "GetItem":
                sizes = [item_size(out.get("Item"))]
            elif op in ("Query", "Scan"):
                sizes = [sum(item_size(i) for i in out.get("Items", []))]
            elif op == "BatchGetItem":
                sizes = [item_size(i) for items in out.get("Responses", {}).values() for i in items]
            else:
                sizes = [item_size(r.get("Item")) for r in out.get("Responses", [])]
            consistent = bool(req.get("ConsistentRead"))
            factor = 2.0 if op == "TransactGetItems" else (1.0 if consistent else 0.5)
            units = sum(max(1, math.ceil(s / 4096)) * factor for s in sizes) if sizes else factor
            with t.lock:
                t.ddb["read_requests"] += 1
                t.ddb["rru"] += units


class AwsProxy:
    def __init__(self, upstream_url: str, key_names: Optional[dict] = None):
        u = urllib.parse.urlsplit(upstream_url)
        self.tally = Tally()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.upstream_host = u.hostname
        self._server.upstream_port = u.port or 80
        self._server.local = threading.local()
        self._server.tally = self.tally
        self._server.key_names = key_names or {}
        self._server.index_cache = {}
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "AwsProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
