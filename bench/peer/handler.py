"""The boto3 peer of shipgate's webhook function, for benchmarks only (bench/run.sh).

It does the same work per GitHub push as `functions/webhook` (see shared/src/app/sources.rs and
shared/src/adapters/dynamodb.rs), with the same AWS calls on the same table:

  init:  boto3 clients for DynamoDB, CodeBuild, Secrets Manager; one GetItem so the connection is
         open before the first event (shipgate's `bootstrap()` does the same);
  event: the webhook secret from Secrets Manager (first event only, then cached);
         X-Hub-Signature-256 check (HMAC-SHA256, constant-time compare, current + previous secret);
         ping -> 200, other events -> 202 ignored;
         decode the push; Query gsi1 = PIPELINES; match source repository and branch globs;
         TransactWriteItems [Put execution (attribute_not_exists), Put idempotency claim
         (attribute_not_exists or expired TTL)]; a cancelled transaction = duplicate delivery;
         codebuild:StartBuild(sourceVersion = SHA, IMAGE_TAG / IMAGE_REPO_URI /
         SHIPGATE_EXECUTION_ID, idempotency token);
         PutItem execution BUILDING with gsi3pk = BUILD#<id> (condition on version and
         status) -> 202 {"execution_id": ...}.

Run under a Lambda runtime: `python -m awslambdaric handler.handler` (cwd bench/peer).
"""

import base64
import hashlib
import hmac
import json
import os
import re
from datetime import datetime, timedelta, timezone

import boto3
from botocore.exceptions import ClientError

TABLE = os.environ["SHIPGATE_TABLE"]
SECRET_ID = os.environ["SHIPGATE_WEBHOOK_SECRET_ID"]
MAX_BODY = 6 * 1024 * 1024
CLAIM_TTL = timedelta(days=8)

ddb = boto3.client("dynamodb")
codebuild = boto3.client("codebuild")
secrets = boto3.client("secretsmanager")
# open the connection during init, as shipgate's bootstrap() does
try:
    ddb.get_item(TableName=TABLE, Key={"pk": {"S": "WARMUP"}, "sk": {"S": "WARMUP"}})
except ClientError:
    pass

_secret_cache = {}
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _ulid(now_ms: int) -> str:
    value = (now_ms << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in range(25, -1, -1))


def _secrets() -> list:
    raw = _secret_cache.get(SECRET_ID)
    if raw is None:
        raw = secrets.get_secret_value(SecretId=SECRET_ID)["SecretString"]
        _secret_cache[SECRET_ID] = raw
    try:
        parsed = json.loads(raw)
        if isinstance(parsed, dict):
            found = [parsed[k] for k in ("current", "previous") if isinstance(parsed.get(k), str) and parsed[k]]
            if found:
                return found
    except ValueError:
        pass
    return [raw]


def _answer(status: int, body: dict) -> dict:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def _verify(secret_list: list, body: bytes, header):
    if not header:
        return "missing X-Hub-Signature-256 header"
    header = header.strip()
    if not header.startswith("sha256=") or len(header) != 71:
        return "malformed X-Hub-Signature-256 header"
    try:
        expected = bytes.fromhex(header[7:])
    except ValueError:
        return "malformed X-Hub-Signature-256 header"
    ok = False
    for s in secret_list:
        mac = hmac.new(s.encode(), body, hashlib.sha256).digest()
        ok |= hmac.compare_digest(mac, expected)
    return None if ok else "signature does not match"


def _glob(pattern: str) -> "re.Pattern":
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("^" + "".join(out) + "$")


def _matches(p: dict, repo: str, kind: str, name: str, files) -> bool:
    if p.get("source", {}).get("github") != repo:
        return False
    globs = p.get("branches", []) if kind == "branch" else p.get("tags", [])
    if not any(_glob(g).match(name) for g in globs):
        return False
    paths = p.get("paths") or []
    if paths and files is not None:
        return any(_glob(g).match(f) for g in paths for f in files)
    return True


def _pipelines() -> list:
    out, kwargs = [], {}
    while True:
        page = ddb.query(
            TableName=TABLE,
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "PIPELINES"}},
            **kwargs,
        )
        out.extend(json.loads(i["body"]["S"])["definition"] for i in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return out
        kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def _exec_item(e: dict) -> dict:
    item = {
        "pk": {"S": f"EXEC#{e['id']}"},
        "sk": {"S": "EXEC"},
        "gsi1pk": {"S": f"PIPELINE#{e['pipeline']}"},
        "gsi1sk": {"S": f"EXEC#{e['id']}"},
        "gsi2pk": {"S": f"STATUS#{e['status']}"},
        "gsi2sk": {"S": e["id"]},
        "status": {"S": e["status"]},
        "version": {"N": str(e["version"])},
        "updated_at": {"S": e["updated_at"]},
        "body": {"S": json.dumps(e, separators=(",", ":"))},
    }
    if e.get("build_id"):
        item["gsi3pk"] = {"S": f"BUILD#{e['build_id']}"}
        item["gsi3sk"] = {"S": e["id"]}
    return item


def _start(pipeline: dict, push: dict, delivery: str, body_digest: str) -> dict:
    now = datetime.now(timezone.utc)
    at = now.isoformat().replace("+00:00", "Z")
    head = push.get("head_commit") or {}
    pusher = (push.get("pusher") or {}).get("name")
    actor = f"github:{pusher}" if pusher else "github"
    exec_id = _ulid(int(now.timestamp() * 1000))
    sha = push["after"].lower()
    execution = {
        "id": exec_id,
        "pipeline": pipeline["name"],
        "status": "RECEIVED",
        "version": 1,
        "created_at": at,
        "updated_at": at,
        "trigger": {"github_push": {"delivery": delivery, "pusher": pusher}},
        "commit": {
            "sha": sha,
            "reference": push["ref"].split("/", 2)[2],
            "author": ((head.get("author") or {}).get("name") or pusher),
            "message": head.get("message"),
            "url": push.get("compare") or head.get("url"),
        },
        "attempt": 1,
        "history": [{"at": at, "from": None, "to": "RECEIVED", "cause": f"GitHub push (delivery {delivery})", "actor": actor}],
    }
    # as shipgate: replay protection keys on the signed body, not on unsigned headers
    claim_key = f"IDEM#PUSH#{body_digest}#{pipeline['name']}"
    try:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": _exec_item(execution), "ConditionExpression": "attribute_not_exists(pk)"}},
                {
                    "Put": {
                        "TableName": TABLE,
                        "Item": {
                            "pk": {"S": claim_key},
                            "sk": {"S": "IDEM"},
                            "value": {"S": exec_id},
                            "ttl": {"N": str(int((now + CLAIM_TTL).timestamp()))},
                        },
                        "ConditionExpression": "attribute_not_exists(pk) OR #ttl < :now",
                        "ExpressionAttributeNames": {"#ttl": "ttl"},
                        "ExpressionAttributeValues": {":now": {"N": str(int(now.timestamp()))}},
                    }
                },
            ]
        )
    except ClientError as e:
        if e.response["Error"]["Code"] != "TransactionCanceledException":
            raise
        existing = ddb.get_item(TableName=TABLE, Key={"pk": {"S": claim_key}, "sk": {"S": "IDEM"}}, ConsistentRead=True)
        return {"execution_id": existing.get("Item", {}).get("value", {}).get("S"), "duplicate": True}

    repo_uri = pipeline["image"]["repository"]
    build = codebuild.start_build(
        projectName=pipeline["build"]["project"],
        sourceVersion=sha,
        environmentVariablesOverride=[
            {"name": "IMAGE_TAG", "value": sha[:12], "type": "PLAINTEXT"},
            {"name": "IMAGE_REPO_URI", "value": repo_uri, "type": "PLAINTEXT"},
            {"name": "SHIPGATE_EXECUTION_ID", "value": exec_id, "type": "PLAINTEXT"},
        ],
        idempotencyToken=f"{exec_id}-1",
    )
    build_id = build["build"]["id"]
    prev_version, prev_status = execution["version"], execution["status"]
    later = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    execution.update(status="BUILDING", version=prev_version + 1, updated_at=later, build_id=build_id)
    execution["history"].append({"at": later, "from": "RECEIVED", "to": "BUILDING", "cause": f"build {build_id} started", "actor": "shipgate"})
    ddb.put_item(
        TableName=TABLE,
        Item=_exec_item(execution),
        ConditionExpression="#v = :v AND #s = :s",
        ExpressionAttributeNames={"#v": "version", "#s": "status"},
        ExpressionAttributeValues={":v": {"N": str(prev_version)}, ":s": {"S": prev_status}},
    )
    return {"execution_id": exec_id, "duplicate": False}


def handler(event, context):
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    body = event.get("body") or ""
    body = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    if len(body) > MAX_BODY:
        return _answer(413, {"error": "request body is too large"})
    problem = _verify(_secrets(), body, headers.get("x-hub-signature-256"))
    if problem:
        return _answer(401, {"error": f"signature check failed: {problem}"})
    kind = headers.get("x-github-event")
    if not kind:
        return _answer(400, {"error": "missing X-GitHub-Event header"})
    if kind == "ping":
        return _answer(200, {"status": "pong"})
    if kind != "push":
        return _answer(202, {"status": "ignored", "reason": f"event {kind!r} is not handled"})
    delivery = headers.get("x-github-delivery")
    if not delivery or len(delivery) > 128:
        return _answer(400, {"error": "missing X-GitHub-Delivery header"})
    try:
        push = json.loads(body)
        ref, after, repo = push["ref"], push["after"], push["repository"]["full_name"]
    except (ValueError, KeyError, TypeError) as e:
        return _answer(400, {"error": f"malformed push payload: {e}"})
    if push.get("deleted") or set(after) == {"0"}:
        return _answer(202, {"status": "ignored", "reason": f"{ref} was deleted"})
    if ref.startswith("refs/heads/"):
        kind_, name = "branch", ref[len("refs/heads/"):]
    elif ref.startswith("refs/tags/"):
        kind_, name = "tag", ref[len("refs/tags/"):]
    else:
        return _answer(400, {"error": "push payload field `ref`: expected refs/heads/... or refs/tags/..."})
    commits = push.get("commits") or []
    files = None
    if 0 < len(commits) < 20:
        files = sorted({f for c in commits for k in ("added", "removed", "modified") for f in c.get(k, [])})
    matching = [p for p in _pipelines() if _matches(p, repo, kind_, name, files)]
    if not matching:
        return _answer(202, {"status": "ignored", "reason": "no pipeline for this push"})
    digest = hashlib.sha256(body).hexdigest()
    started = [_start(p, push, delivery, digest) for p in matching]
    return _answer(202, {"execution_id": started[0]["execution_id"], "executions": started})
