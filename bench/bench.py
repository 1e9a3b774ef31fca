"""shipgate performance evidence (issue 9). Run through bench/run.sh (`make bench`).

Measures, against the local AWS (moto, provisioned by `shipgate dev`), the release function
binaries under the Lambda Runtime API emulator (bench/runtime_emulator.py) and the boto3 peer of
the webhook (bench/peer/handler.py under awslambdaric):

  A. one sandbox, the seven functions:
     1. AWS calls and DynamoDB write/read units of full successful executions (push -> build ->
        test deploy -> approval -> prod -> SUCCEEDED), every function call counted by the proxy
        (bench/aws_proxy.py) between the functions and moto; time spent outside AWS calls;
     2. per-invocation latency and CPU time along N full executions (direct to moto), then
        control, sweeper and codecommit invocations; peak RSS (VmHWM) of each warm process;
  B. a fresh sandbox:
     1. Init Duration over K rounds of cold starts, interleaved: the bare lambda_runtime
        hello-world (bench/hello, the physical-limit reference), each function, the boto3 peer;
        each once direct to moto (+ its first invocation), then once through the proxy, which
        counts and times the AWS round trips made before the first `next` ("own init work" =
        Init Duration minus those round trips);
     2. where the webhook's Init Duration goes (CA store variants; the warm-up call);
     3. webhook (Rust) vs the boto3 peer: K cold starts each, N alternating invocations each of a
        signed push, a ping and an ignored event; the pushes again through the proxy.

Then it merges the criterion medians, binary sizes and build time, prints one table and writes
target/bench/results.json. BENCH_PHASES (or --phases) selects phases: count, latency (A1, A2),
init, breakdown, peer (B1-B3), criterion (merge the medians); default all.
"""

from __future__ import annotations

import argparse
import base64
import copy
import ctypes
import hashlib
import hmac
import json
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from aws_proxy import AwsProxy  # noqa: E402
from runtime_emulator import FunctionProcess  # noqa: E402

EVENTS = ROOT / "events"
FUNCTIONS = ["webhook", "codecommit", "build-events", "deploy-events", "approvals", "control", "sweeper"]
WEBHOOK_SECRET = b"shipgate-dev-webhook-secret"
ACCOUNT = "123456789012"

# ---- targets (issue 9) -----------------------------------------------------------------------
TARGET_INIT_MS = 30.0
TARGET_INIT_RATIO = 0.10
TARGET_DECODE_US = 200.0
TARGET_BINARY_MB = 8.0
TARGET_RSS_MB = 32.0
TARGET_DDB_WRITES = 12

# ---- list prices (us-east-1; as known in 2025 — verify before quoting) -------------------------
PRICES = {
    "as_of": "2025 list prices, us-east-1 (verify on the AWS pricing pages)",
    "lambda_arm64_per_gb_s": 0.0000133334,
    "lambda_per_million_requests": 0.20,
    "apigw_http_per_million_requests": 1.00,
    "dynamodb_on_demand_per_million_wru": 0.625,
    "dynamodb_on_demand_per_million_rru": 0.125,
    "secrets_manager_per_10k_calls": 0.05,
    "sns_per_million_publishes": 0.50,
    "sns_email_per_100k": 2.00,
    "codepipeline_v2_per_action_minute": 0.002,
}

_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def _die_with_parent():  # preexec_fn: SIGKILL this child when the bench process dies
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def pct(values, p):
    s = sorted(values)
    if not s:
        return None
    k = (len(s) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(values) -> dict:
    return {
        "n": len(values),
        "median": pct(values, 50),
        "p99": pct(values, 99),
        "min": min(values) if values else None,
        "max": max(values) if values else None,
    }


# ---- the sandbox ------------------------------------------------------------------------------
class Sandbox:
    """`shipgate dev` on free ports; after provisioning it is paused (SIGSTOP) so its event pump
    neither loads moto nor consumes the approval messages; moto (its child) keeps serving."""

    def __init__(self, state_dir: Path, log_path: Path):
        state_dir.mkdir(parents=True, exist_ok=True)
        env_file = state_dir / "dev.env"
        if env_file.exists():
            env_file.unlink()
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [str(ROOT / "target/debug/shipgate"), "dev", "--port", "0", "--build-seconds", "360000",
             "--deploy-seconds", "360000", "--sweep-seconds", "3600000", "--state-dir", str(state_dir)],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 120
        while not env_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"shipgate dev did not start; see {log_path}")
            time.sleep(0.1)
        time.sleep(0.3)  # the file is written in one call; the banner follows
        self.env = {}
        for line in env_file.read_text().splitlines():
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                self.env[k] = v
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.moto = self.env["AWS_ENDPOINT_URL"]
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=self.env["AWS_REGION"])
        self.ddb = session.client("dynamodb", endpoint_url=self.moto)
        self.ecr = session.client("ecr", endpoint_url=self.moto)
        self.sqs = session.client("sqs", endpoint_url=self.moto)
        self.table = self.env["SHIPGATE_TABLE"]
        self.queue_url = [u for u in self.sqs.list_queues()["QueueUrls"] if u.endswith("/shipgate-outbox")][0]
        self.pipeline = self.item("PIPELINE#demo", "CONFIG")["definition"]

    def function_env(self, endpoint: str) -> dict:
        keep = ["SHIPGATE_TABLE", "SHIPGATE_WEBHOOK_SECRET_ID", "SHIPGATE_SIGNING_KEY_ID", "SHIPGATE_PUBLIC_URL",
                "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        env = {k: self.env[k] for k in keep}
        env["AWS_ENDPOINT_URL"] = endpoint
        return env

    def item(self, pk: str, sk: str):
        out = self.ddb.get_item(TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True)
        return json.loads(out["Item"]["body"]["S"]) if "Item" in out else None

    def execution(self, exec_id: str) -> dict:
        return self.item(f"EXEC#{exec_id}", "EXEC")

    def put_image(self, exec_id: str, tag: str) -> None:
        """What the build's `docker push` leaves in ECR (as the sandbox's pump does)."""
        seed = exec_id.encode().hex()
        digest = lambda s: "sha256:" + (s[:64]).ljust(64, "0")  # noqa: E731
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1470, "digest": digest(seed)},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 2811478, "digest": digest(seed[::-1])}],
        }
        self.ecr.put_image(repositoryName="hello", imageManifest=json.dumps(manifest), imageTag=tag)

    def approval_token(self, exec_id: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            found = None
            for m in out.get("Messages", []):
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
                text = m["Body"]
                try:
                    text = json.loads(text).get("Message", text)
                except ValueError:
                    pass
                for token in re.findall(r"/approvals/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)", text):
                    payload = token.split(".")[0]
                    claims = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
                    if claims.split(".")[0] == exec_id:
                        found = token
            if found:
                return found
        raise RuntimeError(f"no approval message for {exec_id}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


# ---- events -----------------------------------------------------------------------------------
def load(path: str) -> dict:
    return json.loads((EVENTS / path).read_text())


class Events:
    def __init__(self):
        self.push = load("apigw/github-push.json")
        self.ping = load("apigw/github-ping.json")
        self.approval_get = load("apigw/approval-get.json")
        self.approval_post = load("apigw/approval-post.json")
        self.codecommit = load("codecommit/updated.json")
        self.build_progress = load("codebuild/in-progress.json")
        self.deploy_progress = load("ecs/in-progress.json")
        self.sweeper = load("scheduled/sweeper.json")
        self.push_body = json.loads(self.push["body"])

    @staticmethod
    def _signed(template: dict, body: str, event: str) -> dict:
        e = copy.deepcopy(template)
        e["body"] = body
        e["headers"]["x-github-event"] = event
        e["headers"]["x-github-delivery"] = str(uuid.uuid4())
        e["headers"]["x-hub-signature-256"] = "sha256=" + hmac.new(WEBHOOK_SECRET, body.encode(), hashlib.sha256).hexdigest()
        e["requestContext"]["requestId"] = uuid.uuid4().hex[:16]
        e["requestContext"]["timeEpoch"] = int(time.time() * 1000)
        return e

    def github_push(self, sha: str | None = None) -> dict:
        """The sample push, re-signed with a new X-GitHub-Delivery (and optionally a new SHA)."""
        if sha is None:
            return self._signed(self.push, self.push["body"], "push")
        body = copy.deepcopy(self.push_body)
        body["after"] = sha
        if body.get("head_commit"):
            body["head_commit"]["id"] = sha
        for c in body.get("commits", []):
            c["id"] = sha
        return self._signed(self.push, json.dumps(body, separators=(",", ":")), "push")

    def github_ping(self) -> dict:
        return self._signed(self.ping, self.ping["body"], "ping")

    def github_ignored(self) -> dict:
        body = json.dumps({"action": "opened", "issue": {"number": 7, "title": "Flaky test"},
                           "repository": self.push_body["repository"]}, separators=(",", ":"))
        return self._signed(self.ping, body, "issues")

    def codecommit_update(self) -> dict:
        e = copy.deepcopy(self.codecommit)
        e["id"] = str(uuid.uuid4())
        return e

    @staticmethod
    def build_state(build_id: str, status: str, region: str) -> dict:
        arn = f"arn:aws:codebuild:{region}:{ACCOUNT}:build/{build_id}"
        return {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": "CodeBuild Build State Change",
            "source": "aws.codebuild", "account": ACCOUNT, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": region, "resources": [arn],
            "detail": {
                "build-status": status, "project-name": build_id.split(":")[0], "build-id": arn,
                "current-phase": "COMPLETED", "current-phase-context": "[: ]", "version": "1",
                "additional-information": {
                    "build-complete": True,
                    "logs": {"deep-link": f"https://console.aws.amazon.com/cloudwatch/home?region={region}#logEvent:group=/aws/codebuild/hello-build"},
                    "phases": [{"phase-type": p, "phase-status": "SUCCEEDED"} for p in ("SUBMITTED", "PROVISIONING", "PRE_BUILD", "BUILD")]
                    + [{"phase-type": "COMPLETED"}],
                },
            },
        }

    @staticmethod
    def deployment_state(deployment_id: str, name: str, cluster: str, service: str, region: str) -> dict:
        return {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": "ECS Deployment State Change",
            "source": "aws.ecs", "account": ACCOUNT, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": region, "resources": [f"arn:aws:ecs:{region}:{ACCOUNT}:service/{cluster}/{service}"],
            "detail": {"eventType": "INFO", "eventName": name, "deploymentId": deployment_id,
                       "updatedAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                       "reason": f"ECS deployment {deployment_id} completed."},
        }

    def approval(self, token: str, post: bool) -> dict:
        e = copy.deepcopy(self.approval_post if post else self.approval_get)
        path = f"/approvals/{token}"
        e["rawPath"] = path
        e["pathParameters"] = {"token": token}
        e["requestContext"]["http"]["path"] = path
        e["requestContext"]["requestId"] = uuid.uuid4().hex[:16]
        return e

    @staticmethod
    def control(command: str, **args) -> dict:
        return {"command": command, **args}


def body_json(inv) -> dict:
    out = inv.json()
    if isinstance(out, dict) and "statusCode" in out and isinstance(out.get("body"), str):
        try:
            return {"statusCode": out["statusCode"], **json.loads(out["body"])}
        except ValueError:
            return out
    return out


# ---- phase A: the full flow -------------------------------------------------------------------
class Flow:
    """Drive one execution from push to SUCCEEDED through the function processes."""

    def __init__(self, sb: Sandbox, ev: Events, procs: dict):
        self.sb, self.ev, self.p = sb, ev, procs
        self.region = sb.env["AWS_REGION"]
        self.pl = sb.pipeline

    def run(self, record) -> str:
        """`record(step, function, invocation)` is called for every invocation."""
        sha = os.urandom(20).hex()
        inv = self.p["webhook"].invoke(self.ev.github_push(sha))
        record("webhook: signed push -> BUILDING", "webhook", inv)
        exec_id = body_json(inv).get("execution_id")
        if not exec_id:
            raise RuntimeError(f"webhook answered {inv.body[:300]!r}")
        e = self.sb.execution(exec_id)
        assert e["status"] == "BUILDING", e["status"]
        self.sb.put_image(exec_id, sha[:12])  # what CodeBuild would push (not counted)

        inv = self.p["build-events"].invoke(self.ev.build_state(e["build_id"], "SUCCEEDED", self.region))
        record("build-events: SUCCEEDED -> DEPLOYING_TEST", "build-events", inv)
        e = self.sb.execution(exec_id)
        assert e["status"] == "DEPLOYING_TEST", (e["status"], inv.body[:300])

        t = self.pl["test"]
        inv = self.p["deploy-events"].invoke(self.ev.deployment_state(
            e["test"]["deployment_id"], "SERVICE_DEPLOYMENT_COMPLETED", t["cluster"], t["service"], self.region))
        record("deploy-events: test COMPLETED -> AWAITING_APPROVAL", "deploy-events", inv)
        e = self.sb.execution(exec_id)
        assert e["status"] == "AWAITING_APPROVAL", (e["status"], inv.body[:300])
        token = self.sb.approval_token(exec_id)  # the email's link (read from SQS, not counted)

        inv = self.p["approvals"].invoke(self.ev.approval(token, post=False))
        record("approvals: GET page", "approvals", inv)
        assert body_json(inv).get("statusCode") == 200, inv.body[:300]
        inv = self.p["approvals"].invoke(self.ev.approval(token, post=True))
        record("approvals: POST approve -> DEPLOYING_PROD", "approvals", inv)
        e = self.sb.execution(exec_id)
        assert e["status"] == "DEPLOYING_PROD", (e["status"], inv.body[:300])

        pr = self.pl["prod"]
        inv = self.p["deploy-events"].invoke(self.ev.deployment_state(
            e["prod"]["deployment_id"], "SERVICE_DEPLOYMENT_COMPLETED", pr["cluster"], pr["service"], self.region))
        record("deploy-events: prod COMPLETED -> SUCCEEDED", "deploy-events", inv)
        e = self.sb.execution(exec_id)
        assert e["status"] == "SUCCEEDED", (e["status"], inv.body[:300])
        return exec_id


def start_functions(names, sb: Sandbox, endpoint: str, logs: Path, binaries: Path) -> dict:
    procs = {}
    for name in names:
        procs[name] = FunctionProcess(name, [str(binaries / name)], sb.function_env(endpoint), str(logs / f"{name}.log"))
    return procs


def stop_all(procs: dict) -> None:
    for p in procs.values():
        p.stop()


def phase_count(sb: Sandbox, ev: Events, args, logs: Path) -> dict:
    """AWS calls and DynamoDB units per successful execution, counted by the proxy."""
    proxy = AwsProxy(sb.moto).start()
    names = ["webhook", "build-events", "deploy-events", "approvals"]
    procs = start_functions(names, sb, proxy.url, logs, args.binaries)
    try:
        init_snapshot = proxy.tally.snapshot()
        flow = Flow(sb, ev, procs)
        invocations = []
        flow.run(lambda s, f, inv: None)  # warm-up: secrets and connections of each cold start
        first = proxy.tally.snapshot()
        per_flow = []
        spans_by_step = {}
        for _ in range(args.count_flows):
            proxy.tally.reset()
            steps = []
            flow.run(lambda s, f, inv: steps.append((s, f, inv)))
            snap = proxy.tally.snapshot()
            per_flow.append(snap)
            for s, f, inv in steps:
                aws = [(a, b, name, up) for a, b, name, _, up in snap["spans"] if a >= inv.submitted and b <= inv.finished]
                d = spans_by_step.setdefault(s, {"function": f, "ms": [], "aws_ms": [], "moto_ms": [], "calls": []})
                d["ms"].append(inv.duration_ms)
                d["aws_ms"].append(sum((b - a) * 1000 for a, b, _, _ in aws))
                d["moto_ms"].append(sum(up * 1000 for _, _, _, up in aws))
                d["calls"].append([n for _, _, n, _ in aws])
            invocations.append(len(steps))
    finally:
        stop_all(procs)
        proxy.stop()
    last = per_flow[-1]
    consistent = all(p["calls"] == last["calls"] and p["dynamodb"].get("items_written") == last["dynamodb"].get("items_written")
                     for p in per_flow)
    by_service = {}
    for k, v in last["calls"].items():
        by_service[k.split(":")[0]] = by_service.get(k.split(":")[0], 0) + v
    steps = {
        s: {"function": d["function"], "calls": d["calls"][-1],
            "median_ms_via_proxy": statistics.median(d["ms"]),
            "median_aws_ms": statistics.median(d["aws_ms"]),
            "median_moto_ms": statistics.median(d["moto_ms"]),
            "median_self_ms": statistics.median([m - a for m, a in zip(d["ms"], d["aws_ms"])])}
        for s, d in spans_by_step.items()
    }
    return {
        "flows_counted": args.count_flows,
        "identical_across_flows": consistent,
        "lambda_invocations": invocations[-1],
        "apigw_requests": sum(1 for s in steps.values() if s["function"] in ("webhook", "approvals")),
        "aws_calls_total": sum(last["calls"].values()),
        "aws_calls_by_service": by_service,
        "aws_calls": dict(sorted(last["calls"].items())),
        "failed_calls": last["failed"],
        "dynamodb": last["dynamodb"],
        "dynamodb_item_sizes": last["dynamodb_item_sizes"],
        "steps": steps,
        "cold_start_calls": {"init (4 processes)": init_snapshot["calls"],
                             "first execution (warm-up, incl. init)": first["calls"]},
    }


def phase_latency(sb: Sandbox, ev: Events, args, logs: Path) -> dict:
    procs = start_functions(FUNCTIONS, sb, sb.moto, logs, args.binaries)
    lat: dict = {}

    def record(step, function, inv):
        if inv.kind != "response":
            raise RuntimeError(f"{step}: {inv.kind} {inv.error_type} {inv.body[:300]!r}")
        d = lat.setdefault(step, {"function": function, "ms": [], "cpu": []})
        d["ms"].append(inv.duration_ms)
        d["cpu"].append(inv.cpu_ms)

    try:
        # a second pipeline on CodeCommit, so codecommit events start executions too
        cc = dict(sb.pipeline, name="demo-codecommit", source={"codecommit": "hello"})
        out = body_json(procs["control"].invoke(ev.control("apply_pipeline", pipeline=cc)))
        if "error" in (out or {}):
            raise RuntimeError(f"apply_pipeline: {out}")
        flow = Flow(sb, ev, procs)
        flow.run(lambda *a: None)  # warm-up
        ids = []
        for i in range(args.n):
            ids.append(flow.run(record))
            if (i + 1) % 50 == 0:
                log(f"  {i + 1}/{args.n} executions")
        for i in range(args.n):
            record("control: status", "control", procs["control"].invoke(ev.control("status", pipeline="demo")))
            record("control: show", "control", procs["control"].invoke(ev.control("show", execution_id=ids[i % len(ids)])))
        for _ in range(args.n):
            record("sweeper: scheduled run", "sweeper", procs["sweeper"].invoke(ev.sweeper))
        for _ in range(args.n):
            inv = procs["codecommit"].invoke(ev.codecommit_update())
            record("codecommit: branch updated -> BUILDING", "codecommit", inv)
        rss = {name: p.peak_rss_kib() for name, p in procs.items()}
    finally:
        stop_all(procs)
    return {"steps": {k: {"function": v["function"], **summary(v["ms"]),
                          "cpu_ms_mean": statistics.fmean(v["cpu"]), "series_ms": [round(x, 3) for x in v["ms"]]}
                      for k, v in lat.items()},
            "peak_rss_kib": rss}


FIRST_EVENT = {
    "webhook": lambda ev: ev.github_push(),
    "codecommit": lambda ev: ev.codecommit_update(),
    "build-events": lambda ev: ev.build_progress,
    "deploy-events": lambda ev: ev.deploy_progress,
    "approvals": lambda ev: ev.approval_get,
    "control": lambda ev: ev.control("list_pipelines"),
    "sweeper": lambda ev: ev.sweeper,
}


def cold_starts(make, k: int, first_event) -> dict:
    """Start a fresh process k times: Init Duration, first invocation, peak RSS after it."""
    init, first, rss = [], [], []
    for _ in range(k):
        p = make()
        try:
            init.append(p.init_ms)
            inv = p.invoke(first_event())
            first.append(inv.duration_ms)
            rss.append(p.peak_rss_kib())
        finally:
            p.stop()
    return {"init_ms": summary(init), "first_invocation_ms": summary(first), "peak_rss_kib_after_first": max(rss)}


HELLO = "bench-hello"  # bench/hello: bare lambda_runtime, no AWS SDK (the physical-limit reference)
PEER = "boto3"  # bench/peer/handler.py under awslambdaric
TARGET_OWN_INIT_X_HELLO = 2.0


def init_aws_spans(spans: list, p: FunctionProcess) -> list:
    """The proxy spans (start, end, name, status, upstream s) that lie inside p's init."""
    return [s for s in spans if s[0] >= p.started and s[1] <= p.api.first_next_at]


def phase_init(sb: Sandbox, ev: Events, args, logs: Path) -> dict:
    """Init Duration of the seven functions, the hello-world reference and the boto3 peer,
    interleaved (round i starts each of them once, so drift on this shared VM hits all alike):

    - direct to moto: Init Duration, first invocation (one typical event), peak RSS after it;
    - through the counting proxy: Init Duration again, with the AWS round trips made before the
      first `next` counted and timed; "own init work" = that Init Duration minus those round trips
      (per cold start, then the median).

    - the same through the proxy with Lambda's CA layout (SSL_CERT_DIR empty: the bundle file only).

    The hello-world makes no AWS calls and loads no CA certificates, so every pass measures the
    same thing for it: its reference is the median of all 3K cold starts."""
    hello_event = {"hello": "world", "from": "bench"}

    def env(ep, extra):
        return {**sb.function_env(ep), **(extra or {})}

    subjects = {HELLO: lambda ep, extra=None: FunctionProcess(HELLO, [str(args.binaries / HELLO)], env(ep, extra),
                                                              str(logs / f"cold-{HELLO}.log"))}
    for name in FUNCTIONS:
        subjects[name] = lambda ep, extra=None, name=name: FunctionProcess(  # noqa: E731
            name, [str(args.binaries / name)], env(ep, extra), str(logs / f"cold-{name}.log"))
    subjects[PEER] = lambda ep, extra=None: peer_process(sb, logs, "cold-webhook-peer", endpoint=ep, extra=extra)
    # the CA layout of Lambda's provided.al2023 (one bundle file, no hashed certificate directory);
    # this machine's Debian has the bundle plus 146 files in /etc/ssl/certs, which rustls' native
    # certificate loader reads too (see the breakdown phase)
    empty = logs / "empty-ca-dir"
    empty.mkdir(exist_ok=True)
    lambda_ca = {"SSL_CERT_DIR": str(empty)}
    # the peer's first event is a ping (secret read + signature check, no writes): the execution
    # items the peer writes are not shipgate's schema, and the sweeper's first event would read them
    first_event = dict(FIRST_EVENT, **{HELLO: lambda ev: hello_event, PEER: lambda ev: ev.github_ping()})

    direct = {n: {"init": [], "cpu": [], "first": [], "rss": []} for n in subjects}
    proxied = {n: {"init": [], "aws_ms": [], "calls": [], "own": []} for n in subjects}
    bundle_only = {n: {"init": [], "aws_ms": [], "calls": [], "own": []} for n in subjects}
    proxy = AwsProxy(sb.moto).start()
    try:
        for i in range(args.cold):
            for name, make in subjects.items():
                p = make(sb.moto)
                try:
                    inv = p.invoke(first_event[name](ev))
                    if inv.kind != "response":
                        raise RuntimeError(f"{name}: first invocation {inv.kind} {inv.body[:300]!r}")
                    if name == HELLO and inv.json() != hello_event:
                        raise RuntimeError(f"{HELLO} did not echo the event: {inv.body[:300]!r}")
                    direct[name]["init"].append(p.init_ms)
                    direct[name]["cpu"].append(p.init_cpu_ms)
                    direct[name]["first"].append(inv.duration_ms)
                    direct[name]["rss"].append(p.peak_rss_kib())
                finally:
                    p.stop()
            for series, extra in ((proxied, None), (bundle_only, lambda_ca)):
                for name, make in subjects.items():
                    proxy.tally.reset()
                    p = make(proxy.url, extra)
                    try:
                        spans = init_aws_spans(proxy.tally.snapshot()["spans"], p)
                    finally:
                        p.stop()
                    aws_ms = sum((b - a) * 1000 for a, b, *_ in spans)
                    d = series[name]
                    d["init"].append(p.init_ms)
                    d["aws_ms"].append(aws_ms)
                    d["calls"].append(sorted(n for _, _, n, *_ in spans))
                    d["own"].append(p.init_ms - aws_ms)
            log(f"  round {i + 1}/{args.cold}: " + ", ".join(
                f"{n} {direct[n]['init'][-1]:.1f}" for n in subjects) + " ms")
    finally:
        proxy.stop()

    def via(pp):
        calls = pp["calls"][-1]
        return {
            "init_ms": summary(pp["init"]),
            "init_aws_calls": calls,
            "init_aws_calls_identical_across_cold_starts": all(c == calls for c in pp["calls"]),
            "init_aws_ms": summary(pp["aws_ms"]),
            "own_init_ms": summary(pp["own"]),
            "own_init_ms_series": [round(x, 3) for x in pp["own"]],
        }

    def entry(name):
        dd = direct[name]
        return {
            "init_ms": summary(dd["init"]),
            "first_invocation_ms": summary(dd["first"]),
            "peak_rss_kib_after_first": max(dd["rss"]),
            "init_ms_series": [round(x, 3) for x in dd["init"]],
            "init_cpu_ms": summary(dd["cpu"]),
            "via_proxy": via(proxied[name]),
            "via_proxy_ca_bundle_only": via(bundle_only[name]),
        }

    hello_all = direct[HELLO]["init"] + proxied[HELLO]["init"] + bundle_only[HELLO]["init"]
    return {
        "functions": {n: entry(n) for n in FUNCTIONS},
        "hello": {**entry(HELLO), "reference_init_ms": summary(hello_all)},  # both passes
        "boto3": entry(PEER),
    }


def phase_init_breakdown(sb: Sandbox, args, logs: Path) -> dict:
    """Where the webhook's Init Duration goes: the CA certificate loading of the SDK's HTTPS
    client (variants of the CA store, interleaved) and the warm-up DynamoDB call (via the proxy)."""
    empty = logs / "empty-ca-dir"
    empty.mkdir(exist_ok=True)
    variants = {
        "system CA store (Debian: bundle + 146 files in /etc/ssl/certs)": {},
        "CA bundle file only (SSL_CERT_DIR empty)": {"SSL_CERT_DIR": str(empty)},
        "no CA certificates (SSL_CERT_FILE=/dev/null, SSL_CERT_DIR empty)": {"SSL_CERT_DIR": str(empty), "SSL_CERT_FILE": "/dev/null"},
    }
    init = {k: [] for k in variants}
    for _ in range(args.cold):
        for k, extra in variants.items():
            env = sb.function_env(sb.moto)
            env.update(extra)
            p = FunctionProcess("webhook", [str(args.binaries / "webhook")], env, str(logs / "init-ca.log"))
            init[k].append(p.init_ms)
            p.stop()
    proxy = AwsProxy(sb.moto).start()
    before, call, after = [], [], []
    try:
        for _ in range(args.cold):
            proxy.tally.reset()
            p = FunctionProcess("webhook", [str(args.binaries / "webhook")], sb.function_env(proxy.url), str(logs / "init-proxy.log"))
            spans = proxy.tally.snapshot()["spans"]
            p.stop()
            if len(spans) != 1:
                continue
            a, b = spans[0][0], spans[0][1]
            before.append((a - p.started) * 1000)
            call.append((b - a) * 1000)
            after.append((p.api.first_next_at - b) * 1000)
    finally:
        proxy.stop()
    return {
        "webhook_init_ms_by_ca_store": {k: summary(v) for k, v in init.items()},
        "webhook_init_phases_via_proxy_ms": {
            "exec -> warm-up GetItem sent (runtime, config, SDK clients, CA store)": summary(before),
            "warm-up GetItem (moto via the proxy)": summary(call),
            "GetItem answered -> first `next`": summary(after),
        },
    }


# ---- phase B: Rust webhook vs the boto3 peer --------------------------------------------------
def peer_process(sb: Sandbox, logs: Path, name="webhook-peer", endpoint: str | None = None,
                 extra: dict | None = None) -> FunctionProcess:
    env = {**sb.function_env(endpoint or sb.moto), **(extra or {})}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return FunctionProcess(name, [str(HERE / ".venv/bin/python"), "-m", "awslambdaric", "handler.handler"],
                           env, str(logs / f"{name}.log"), cwd=str(HERE / "peer"))


def phase_peer(sb: Sandbox, ev: Events, args, logs: Path) -> dict:
    rust_make = lambda: FunctionProcess("webhook", [str(args.binaries / "webhook")], sb.function_env(sb.moto),  # noqa: E731
                                        str(logs / "cmp-webhook.log"))
    peer_make = lambda: peer_process(sb, logs)  # noqa: E731
    cold = {"rust": cold_starts(rust_make, args.cold, ev.github_push),
            "boto3": cold_starts(peer_make, args.cold, ev.github_push)}
    kinds = {"push": ev.github_push, "ping": ev.github_ping, "ignored": ev.github_ignored}
    lat = {impl: {k: [] for k in kinds} for impl in ("rust", "boto3")}
    cpu = {impl: {k: [] for k in kinds} for impl in ("rust", "boto3")}
    procs = {"rust": rust_make(), "boto3": peer_make()}
    try:
        for impl, p in procs.items():  # warm-up (secret, connections)
            for make in kinds.values():
                p.invoke(make())
        for i in range(args.n):
            order = ("rust", "boto3") if i % 2 == 0 else ("boto3", "rust")
            for kind, make in kinds.items():
                for impl in order:
                    inv = procs[impl].invoke(make())
                    status = body_json(inv).get("statusCode")
                    expected = {"push": 202, "ping": 200, "ignored": 202}[kind]
                    if inv.kind != "response" or status != expected:
                        raise RuntimeError(f"{impl} {kind}: {inv.kind} {inv.body[:300]!r}")
                    lat[impl][kind].append(inv.duration_ms)
                    cpu[impl][kind].append(inv.cpu_ms)
        rss = {impl: p.peak_rss_kib() for impl, p in procs.items()}
    finally:
        for p in procs.values():
            p.stop()
    # the same pushes through the counting proxy: the time each implementation spends outside
    # its AWS calls (its own work: decoding, signing, serializing, the SDK) and the calls it makes
    proxy = AwsProxy(sb.moto).start()
    own = {"rust": [], "boto3": []}
    calls = {}
    procs = {
        "rust": FunctionProcess("webhook", [str(args.binaries / "webhook")], sb.function_env(proxy.url), str(logs / "cmp-webhook-proxy.log")),
        "boto3": peer_process(sb, logs, "webhook-peer-proxy", endpoint=proxy.url),
    }
    try:
        for p in procs.values():
            p.invoke(ev.github_push())
        for i in range(max(args.n // 4, 20)):
            for impl in (("rust", "boto3") if i % 2 == 0 else ("boto3", "rust")):
                proxy.tally.reset()
                inv = procs[impl].invoke(ev.github_push())
                spans = proxy.tally.snapshot()["spans"]
                aws = sum(b - a for a, b, *_ in spans if a >= inv.submitted and b <= inv.finished) * 1000
                own[impl].append(inv.duration_ms - aws)
                calls[impl] = sorted(n for _, _, n, *_ in spans)
    finally:
        for p in procs.values():
            p.stop()
        proxy.stop()
    return {"cold": cold,
            "latency": {impl: {k: {**summary(v), "cpu_ms_mean": statistics.fmean(cpu[impl][k]),
                                   "series_ms": [round(x, 3) for x in v]} for k, v in d.items()}
                        for impl, d in lat.items()},
            "push_time_outside_aws_calls_ms": {impl: summary(v) for impl, v in own.items()},
            "push_aws_calls": calls,
            "peak_rss_kib": rss}


# ---- everything else --------------------------------------------------------------------------
def criterion_medians(criterion_dir: Path) -> dict:
    out = {}
    for bench_json in criterion_dir.glob("**/new/benchmark.json"):
        meta = json.loads(bench_json.read_text())
        est = json.loads((bench_json.parent / "estimates.json").read_text())
        out[meta["full_id"]] = {
            "median_ns": est["median"]["point_estimate"],
            "median_ci_ns": [est["median"]["confidence_interval"]["lower_bound"],
                             est["median"]["confidence_interval"]["upper_bound"]],
            "mean_ns": est["mean"]["point_estimate"],
        }
    return dict(sorted(out.items()))


def cpu_counters() -> list:
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:]]


def steal_percent(before: list, after: list) -> float:
    """Share of CPU time the hypervisor gave to others meanwhile (the `steal` column)."""
    d = [b - a for a, b in zip(before, after)]
    return round(100.0 * d[7] / max(1, sum(d[:8])), 1)


def machine() -> dict:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem_kb = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(), "arch": platform.machine(),
            "memory_gib": round(mem_kb / 1024 / 1024, 1), "rustc": rustc,
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def cost(count: dict, latency: dict) -> dict:
    """Cost per 1,000 successful executions at list prices, vs CodePipeline V2."""
    p = PRICES
    ms = [latency["steps"][s]["median"] for s in count["steps"]]
    billed_ms = sum(math.ceil(x) for x in ms)
    gb_s = billed_ms / 1000.0 * 0.125
    ddb = count["dynamodb"]
    per_exec = {
        "lambda_requests": count["lambda_invocations"] * p["lambda_per_million_requests"] / 1e6,
        "lambda_gb_s": gb_s * p["lambda_arm64_per_gb_s"],
        "api_gateway": count["apigw_requests"] * p["apigw_http_per_million_requests"] / 1e6,
        "dynamodb_writes": ddb.get("wru", 0) * p["dynamodb_on_demand_per_million_wru"] / 1e6,
        "dynamodb_reads": ddb.get("rru", 0) * p["dynamodb_on_demand_per_million_rru"] / 1e6,
        "sns_publish+email": count["aws_calls_by_service"].get("sns", 0) * (p["sns_per_million_publishes"] / 1e6 + p["sns_email_per_100k"] / 1e5),
    }
    # the same with a pessimistic 25 ms per AWS call instead of moto's latency
    slow_ms = sum(math.ceil(count["steps"][s]["median_ms_via_proxy"] - count["steps"][s]["median_aws_ms"] + 25 * len(count["steps"][s]["calls"]))
                  for s in count["steps"])
    slow_gb_s = slow_ms / 1000.0 * 0.125
    per_1000 = {k: round(v * 1000, 5) for k, v in per_exec.items()}
    total = sum(per_exec.values()) * 1000
    total_slow = total + (slow_gb_s - gb_s) * p["lambda_arm64_per_gb_s"] * 1000
    # CodePipeline V2: Source ~1 min, Build ~5, Deploy test ~5, Deploy prod ~5 (rounded-up action
    # minutes; the manual approval action is assumed not billed; the CodeBuild minutes themselves
    # are billed in both designs and left out of both)
    cp_minutes = 1 + 5 + 5 + 5
    return {
        "prices": p,
        "shipgate_per_1000_usd": round(total, 4),
        "shipgate_per_1000_usd_if_aws_calls_take_25ms": round(total_slow, 4),
        "shipgate_breakdown_per_1000_usd": per_1000,
        "lambda_billed_ms_per_execution": billed_ms,
        "codepipeline_v2_action_minutes_per_execution": cp_minutes,
        "codepipeline_v2_per_1000_usd": round(cp_minutes * p["codepipeline_v2_per_action_minute"] * 1000, 2),
    }


def row(metric, value, target="", met=None, unit=""):
    return {"metric": metric, "value": value, "unit": unit, "target": target,
            "met": None if met is None else bool(met)}


def fmt(v):
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def init_reference(r: dict):
    """(hello-world Init median, boto3 peer Init median) of the interleaved init phase, else None."""
    if "init" not in r:
        return None, None
    return r["init"]["hello"]["reference_init_ms"]["median"], r["init"]["boto3"]["init_ms"]["median"]


def short_calls(calls: list) -> str:
    counted = {}
    for n in calls:
        counted[n] = counted.get(n, 0) + 1
    return ", ".join(f"{k} x{v}" if v > 1 else k for k, v in counted.items()) or "none"


def build_table(r: dict) -> list:
    rows = []
    if r.get("phases") != list(PHASES):
        rows.append(row("partial run: phases", ", ".join(r.get("phases", []))))
    for phase, pct_ in r.get("cpu_steal_percent", {}).items():
        rows.append(row(f"CPU steal during {phase} (hypervisor; noise indicator)", pct_, unit="%"))
    for phase, (before, after) in r.get("load_average_1min", {}).items():
        rows.append(row(f"load average (1 min) before / after {phase} (2 vCPUs shared; noise indicator)", f"{before:.1f} / {after:.1f}"))
    if r.get("release_build_seconds") is not None:
        rows.append(row("cargo build --release of the 7 functions in this run (no-op if up to date)", round(r["release_build_seconds"], 1), unit="s"))
    for name, size in r["binary_bytes"].items():
        mb = size / 1e6
        rows.append(row(f"binary size {name}", round(mb, 2), f"<= {TARGET_BINARY_MB} MB", mb <= TARGET_BINARY_MB, "MB"))
    if r.get("hello_binary_bytes"):
        rows.append(row(f"binary size {HELLO} (bare lambda_runtime reference)", round(r["hello_binary_bytes"] / 1e6, 2), unit="MB"))
    hello, boto3_init = init_reference(r)
    peer = r.get("peer")
    if boto3_init is None and peer:
        boto3_init = peer["cold"]["boto3"]["init_ms"]["median"]
    if "init" in r:
        h = r["init"]["hello"]["reference_init_ms"]
        rows.append(row(f"Init Duration {HELLO}: bare lambda_runtime + tracing, no AWS SDK (median of {h['n']}, max {h['max']:.1f})",
                        round(hello, 2), unit="ms"))
        b = r["init"]["boto3"]
        rows.append(row(f"Init Duration boto3 peer, awslambdaric, interleaved with the above (median of {b['init_ms']['n']})",
                        round(boto3_init, 1), unit="ms"))
        goal = TARGET_OWN_INIT_X_HELLO * hello
        for name, c in r["init"]["functions"].items():
            m = c["init_ms"]["median"]
            target = f"<= {TARGET_INIT_MS:.0f} ms" + (f" and <= 1/10 of boto3 ({boto3_init / 10:.1f} ms)" if boto3_init else "")
            met = m <= TARGET_INIT_MS and (boto3_init is None or m <= boto3_init * TARGET_INIT_RATIO)
            rows.append(row(f"Init Duration {name} (median of {c['init_ms']['n']}, max {c['init_ms']['max']:.1f})", round(m, 1), target, met, "ms"))
        for name, c in r["init"]["functions"].items():
            m = c["init_ms"]["median"]
            rows.append(row(f"Init Duration {name}: x hello-world / x boto3 peer", f"{m / hello:.2f} / {m / boto3_init:.3f}", unit="x"))
        hc = r["init"]["hello"]["init_cpu_ms"]["median"]
        rows.append(row(f"Init CPU time {HELLO} (until the first `next`, median)", round(hc, 2), unit="ms"))
        for name, c in r["init"]["functions"].items():
            m = c["init_cpu_ms"]["median"]
            rows.append(row(f"Init CPU time {name} (median)", round(m, 2), unit=f"ms ({m / hc:.2f}x hello)"))
        for name, c in list(r["init"]["functions"].items()) + [("boto3 peer", r["init"]["boto3"])]:
            v = c["via_proxy"]
            rows.append(row(f"init-time AWS round trips {name} (via proxy; median time, n={v['init_aws_ms']['n']})",
                            f"{len(v['init_aws_calls'])}: {short_calls(v['init_aws_calls'])}; {v['init_aws_ms']['median']:.2f}", unit="ms"))
        for name, c in r["init"]["functions"].items():
            own = c["via_proxy"]["own_init_ms"]["median"]
            rows.append(row(f"own init work {name} (Init via proxy minus its init-time AWS round trips, median)", round(own, 2),
                            f"<= {TARGET_OWN_INIT_X_HELLO:g}x hello-world ({goal:.1f} ms)", own <= goal, f"ms ({own / hello:.2f}x hello)"))
        for name, c in r["init"]["functions"].items():
            own = c["via_proxy_ca_bundle_only"]["own_init_ms"]["median"]
            rows.append(row(f"own init work {name}, Lambda's CA layout (bundle file only, SSL_CERT_DIR empty; median)", round(own, 2),
                            f"<= {TARGET_OWN_INIT_X_HELLO:g}x hello-world ({goal:.1f} ms)", own <= goal, f"ms ({own / hello:.2f}x hello)"))
        own = r["init"]["boto3"]["via_proxy"]["own_init_ms"]["median"]
        rows.append(row("own init work boto3 peer (same method, median)", round(own, 1), unit=f"ms ({own / hello:.0f}x hello)"))
    if peer:
        py_init = peer["cold"]["boto3"]["init_ms"]["median"]
        rust_init = peer["cold"]["rust"]["init_ms"]["median"]
        rows.append(row(f"Init Duration webhook, second series next to the boto3 peer (median of {peer['cold']['rust']['init_ms']['n']})", round(rust_init, 1), unit="ms"))
        rows.append(row(f"Init Duration boto3 peer, awslambdaric (median of {peer['cold']['boto3']['init_ms']['n']})", round(py_init, 1), unit="ms"))
        rows.append(row("Init ratio Rust / boto3", round(rust_init / py_init, 3), f"<= {TARGET_INIT_RATIO}",
                        rust_init / py_init <= TARGET_INIT_RATIO, "x"))
    if "init_breakdown" in r:
        for k, v in r["init_breakdown"]["webhook_init_ms_by_ca_store"].items():
            rows.append(row(f"Init webhook, {k} (median)", round(v["median"], 1), unit="ms"))
        for k, v in r["init_breakdown"]["webhook_init_phases_via_proxy_ms"].items():
            if v["n"]:
                rows.append(row(f"Init webhook phase: {k} (median)", round(v["median"], 1), unit="ms"))
    if "init" in r:
        for name, c in list(r["init"]["functions"].items()) + [(HELLO, r["init"]["hello"])]:
            rows.append(row(f"first invocation after cold start {name} (median)", round(c["first_invocation_ms"]["median"], 2), unit="ms"))
    if peer:
        rows += peer_rows(peer)
    if "latency" in r:
        rows += latency_rows(r)
    elif peer:
        rows.append(row("peak RSS webhook boto3 peer", round(peer["peak_rss_kib"]["boto3"] / 1024, 1), unit="MiB"))
    if r.get("criterion"):
        rows += criterion_rows(r["criterion"])
    if "count" in r:
        rows += count_rows(r)
    return rows


def peer_rows(peer: dict) -> list:
    rows = []
    for kind in ("push", "ping", "ignored"):
        ru, py = peer["latency"]["rust"][kind], peer["latency"]["boto3"][kind]
        rows.append(row(f"webhook {kind}: Rust median / p99 (n={ru['n']})", f"{ru['median']:.2f} / {ru['p99']:.2f}", unit="ms"))
        rows.append(row(f"webhook {kind}: boto3 median / p99 (n={py['n']})", f"{py['median']:.2f} / {py['p99']:.2f}", unit="ms"))
        rows.append(row(f"webhook {kind}: median ratio Rust / boto3", round(ru["median"] / py["median"], 3), unit="x"))
        rows.append(row(f"webhook {kind}: CPU per invocation, Rust / boto3 (mean)",
                        f"{ru['cpu_ms_mean']:.2f} / {py['cpu_ms_mean']:.2f}", unit="ms"))
    own = peer["push_time_outside_aws_calls_ms"]
    rows.append(row(f"webhook push, time outside AWS calls: Rust / boto3 median (n={own['rust']['n']})",
                    f"{own['rust']['median']:.2f} / {own['boto3']['median']:.2f}", unit="ms"))
    rows.append(row("webhook push, time outside AWS calls: ratio Rust / boto3",
                    round(own["rust"]["median"] / own["boto3"]["median"], 3), unit="x"))
    return rows


def latency_rows(r: dict) -> list:
    rows = []
    for step, s in r["latency"]["steps"].items():
        rows.append(row(f"{step}: median / p99 (n={s['n']}); CPU mean", f"{s['median']:.2f} / {s['p99']:.2f}; {s['cpu_ms_mean']:.2f}", unit="ms"))
    rss_all = dict(r["latency"]["peak_rss_kib"])
    for name, kib in rss_all.items():
        mb = kib / 1024
        rows.append(row(f"peak RSS {name} (VmHWM after the latency runs)", round(mb, 1), f"<= {TARGET_RSS_MB:.0f} MB",
                        mb <= TARGET_RSS_MB, "MiB"))
    if r.get("peer"):
        rows.append(row("peak RSS webhook boto3 peer", round(r["peer"]["peak_rss_kib"]["boto3"] / 1024, 1), unit="MiB"))
    return rows


def criterion_rows(crit: dict) -> list:
    rows = []
    for full_id, c in crit.items():
        if "reference" in full_id and not full_id.startswith("github_push/100_commits/"):
            continue  # the 1-commit reference points stay in the JSON only
        us = c["median_ns"] / 1000
        target, met = "", None
        if full_id == "github_push/100_commits/verify_and_decode":
            target, met = f"<= {TARGET_DECODE_US:.0f} µs", us <= TARGET_DECODE_US
        rows.append(row(f"criterion {full_id} (median)", round(us, 3), target, met, "µs"))
    return rows


def count_rows(r: dict) -> list:
    rows = []
    c = r["count"]
    rows.append(row("Lambda invocations per successful execution", c["lambda_invocations"]))
    rows.append(row("AWS calls per successful execution", c["aws_calls_total"],
                    unit=", ".join(f"{k} {v}" for k, v in sorted(c["aws_calls_by_service"].items()))))
    items = c["dynamodb"].get("items_written", 0)
    rows.append(row("DynamoDB items written per successful execution", items, f"<= {TARGET_DDB_WRITES}", items <= TARGET_DDB_WRITES))
    rows.append(row("DynamoDB write request units per execution", c["dynamodb"].get("wru", 0),
                    unit=f"WRU ({c['dynamodb'].get('wru_table', 0)} table + {c['dynamodb'].get('wru_indexes', 0)} GSI)"))
    rows.append(row("DynamoDB read request units per execution", c["dynamodb"].get("rru", 0), unit="RRU"))
    if "cost" not in r:
        return rows
    k = r["cost"]
    rows.append(row("cost per 1,000 executions, shipgate (list prices)", k["shipgate_per_1000_usd"], unit="USD"))
    rows.append(row("cost per 1,000 executions, shipgate, 25 ms per AWS call", k["shipgate_per_1000_usd_if_aws_calls_take_25ms"], unit="USD"))
    rows.append(row(f"cost per 1,000 executions, CodePipeline V2 ({k['codepipeline_v2_action_minutes_per_execution']} action-min each)",
                    k["codepipeline_v2_per_1000_usd"], unit="USD"))
    return rows


def print_table(rows: list) -> None:
    w = max(len(x["metric"]) for x in rows)
    wv = max(len(fmt(x["value"]) + " " + x["unit"]) for x in rows)
    print(f"{'metric':<{w}}  {'value':<{wv}}  target")
    print("-" * (w + wv + 30))
    for x in rows:
        mark = "" if x["met"] is None else ("  MET" if x["met"] else "  MISSED")
        val = (fmt(x["value"]) + " " + x["unit"]).strip()
        print(f"{x['metric']:<{w}}  {val:<{wv}}  {x['target']}{mark}")


def markdown_table(rows: list) -> str:
    out = ["| metric | value | target | met |", "| --- | --- | --- | --- |"]
    for x in rows:
        val = (fmt(x["value"]) + " " + x["unit"]).strip()
        met = "" if x["met"] is None else ("yes" if x["met"] else "**no**")
        out.append(f"| {x['metric']} | {val} | {x['target']} | {met} |")
    return "\n".join(out) + "\n"


def init_markdown(r: dict) -> str:
    """The init table: each function against the hello-world reference and the boto3 peer."""
    hello, boto3_init = init_reference(r)
    goal = TARGET_OWN_INIT_X_HELLO * hello
    i = r["init"]
    out = [f"Reference: `{HELLO}` {hello:.2f} ms (median of {i['hello']['reference_init_ms']['n']}), boto3 peer "
           f"{boto3_init:.1f} ms (median of {i['boto3']['init_ms']['n']}); goal: own init work <= "
           f"{TARGET_OWN_INIT_X_HELLO:g}x hello-world = {goal:.1f} ms.", "",
           "| function | Init Duration median ms (max) | x hello-world | x boto3 peer | init-time AWS round trips | "
           "their time, median ms | Init via proxy, median ms | own init work, median ms | own / hello-world | "
           f"own <= {TARGET_OWN_INIT_X_HELLO:g}x hello-world | own init work, CA bundle only (Lambda's layout), median ms "
           f"(x hello-world) | that <= {TARGET_OWN_INIT_X_HELLO:g}x | Init CPU time, median ms (x hello-world) |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    hc = i["hello"]["init_cpu_ms"]["median"]
    rows = list(i["functions"].items()) + [(f"{HELLO} (reference)", i["hello"]), ("boto3 peer (awslambdaric)", i["boto3"])]
    for name, c in rows:
        m, v = c["init_ms"], c["via_proxy"]
        own = v["own_init_ms"]["median"]
        met = "" if name not in i["functions"] else ("yes" if own <= goal else "**no**")
        own_b = c["via_proxy_ca_bundle_only"]["own_init_ms"]["median"]
        met_b = "" if name not in i["functions"] else ("yes" if own_b <= goal else "**no**")
        out.append(f"| {name} | {m['median']:.1f} ({m['max']:.1f}) | {m['median'] / hello:.2f} | {m['median'] / boto3_init:.3f} | "
                   f"{len(v['init_aws_calls'])}: {short_calls(v['init_aws_calls'])} | {v['init_aws_ms']['median']:.2f} | "
                   f"{v['init_ms']['median']:.1f} | {own:.2f} | {own / hello:.2f} | {met} | "
                   f"{own_b:.2f} ({own_b / hello:.2f}) | {met_b} | "
                   f"{c['init_cpu_ms']['median']:.2f} ({c['init_cpu_ms']['median'] / hc:.2f}) |")
    return "\n".join(out) + "\n"


def details_markdown(r: dict) -> str:
    c, lat = r["count"], r["latency"]["steps"]
    out = ["| step (function) | AWS calls | latency median / p99 ms | CPU mean ms | outside AWS calls, median ms (via proxy) |",
           "| --- | --- | --- | --- | --- |"]
    for step, d in c["steps"].items():
        calls = {}
        for n in d["calls"]:
            calls[n] = calls.get(n, 0) + 1
        text = ", ".join(f"{k.split(':')[1]} {v}" if v > 1 else k.split(":")[1] for k, v in calls.items())
        l = lat.get(step, {})
        out.append(f"| {step} | {len(d['calls'])}: {text} | {l.get('median', 0):.1f} / {l.get('p99', 0):.1f} | "
                   f"{l.get('cpu_ms_mean', 0):.2f} | {d['median_self_ms']:.1f} |")
    return "\n".join(out) + "\n"


PHASES = ("count", "latency", "init", "breakdown", "peer", "criterion")


def selected_phases(text: str) -> list:
    """BENCH_PHASES / --phases: a comma list of PHASES (empty or "all": every phase)."""
    names = [x.strip() for x in text.split(",") if x.strip()]
    if not names or names == ["all"]:
        return list(PHASES)
    unknown = [x for x in names if x not in PHASES]
    if unknown:
        raise SystemExit(f"unknown phase(s) {', '.join(unknown)}; choose from {', '.join(PHASES)}")
    return [x for x in PHASES if x in names]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "target/bench/results.json"))
    ap.add_argument("--n", type=int, default=int(os.environ.get("BENCH_N", 200)), help="invocations per payload")
    ap.add_argument("--cold", type=int, default=int(os.environ.get("BENCH_COLD", 10)), help="cold starts per function")
    ap.add_argument("--count-flows", type=int, default=10)
    ap.add_argument("--binaries", type=Path, default=ROOT / "target/release")
    ap.add_argument("--build-seconds", type=float, default=None)
    ap.add_argument("--phases", default=os.environ.get("BENCH_PHASES", "all"),
                    help=f"comma list of {', '.join(PHASES)} (default: all)")
    args = ap.parse_args()
    phases = selected_phases(args.phases)
    out_dir = Path(args.out).parent
    logs = out_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for f in logs.glob("*.log"):
        f.unlink()

    results = {"machine": machine(), "phases": phases, "n": args.n, "cold_starts": args.cold,
               "release_build_seconds": args.build_seconds}
    results["binary_bytes"] = {n: (args.binaries / n).stat().st_size for n in FUNCTIONS}
    if (args.binaries / HELLO).exists():
        results["hello_binary_bytes"] = (args.binaries / HELLO).stat().st_size
    ev = Events()
    stat = cpu_counters()
    results["cpu_steal_percent"] = {}

    results["load_average_1min"] = {}
    if "count" in phases or "latency" in phases:
        load = os.getloadavg()[0]
        log("phase A: sandbox 1 (shipgate dev + moto)")
        sb = Sandbox(out_dir / "sandbox-a", logs / "sandbox-a.log")
        try:
            if "count" in phases:
                log("A1: counting AWS calls of full executions (proxy)")
                results["count"] = phase_count(sb, ev, args, logs)
            if "latency" in phases:
                log(f"A2: latency along {args.n} executions + control, sweeper, codecommit")
                results["latency"] = phase_latency(sb, ev, args, logs)
        finally:
            sb.stop()
        results["cpu_steal_percent"]["phase A"] = steal_percent(stat, stat := cpu_counters())
        results["load_average_1min"]["phase A"] = (load, os.getloadavg()[0])

    if {"init", "breakdown", "peer"} & set(phases):
        # a fresh sandbox, so first invocations after a cold start do not see phase A's table
        load = os.getloadavg()[0]
        log("phase B: sandbox 2")
        sb = Sandbox(out_dir / "sandbox-b", logs / "sandbox-b.log")
        try:
            if "init" in phases:
                log(f"B1: {args.cold} rounds of cold starts: {HELLO}, the functions, the boto3 peer (direct, then via the proxy)")
                results["init"] = phase_init(sb, ev, args, logs)
            if "breakdown" in phases:
                log("B2: webhook Init Duration breakdown")
                results["init_breakdown"] = phase_init_breakdown(sb, args, logs)
            if "peer" in phases:
                log("B3: webhook Rust vs boto3 peer")
                results["peer"] = phase_peer(sb, ev, args, logs)
        finally:
            sb.stop()
        results["cpu_steal_percent"]["phase B"] = steal_percent(stat, cpu_counters())
        results["load_average_1min"]["phase B"] = (load, os.getloadavg()[0])

    if "criterion" in phases:
        results["criterion"] = criterion_medians(Path(os.environ.get("CRITERION_HOME", ROOT / "target/criterion")))
    if "count" in results and "latency" in results:
        results["cost"] = cost(results["count"], results["latency"])
    results["table"] = build_table(results)
    Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    md = markdown_table(results["table"])
    if "init" in results:
        md += "\n" + init_markdown(results)
    if "count" in results and "latency" in results:
        md += "\n" + details_markdown(results)
    Path(args.out).with_suffix(".md").write_text(md)
    print()
    print_table(results["table"])
    if "init" in results:
        print()
        print(init_markdown(results))
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
