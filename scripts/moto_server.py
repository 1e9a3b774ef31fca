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

ECS deployments as ECS keeps them: moto 5.2 keeps one deployment per service and answers the same
id for every UpdateService. Here an UpdateService that changes the task definition (or forces a new
deployment) starts a new PRIMARY deployment with its own id, rollout IN_PROGRESS, and the one it
replaces becomes ACTIVE. `POST /_shipgate/ecs/rollout` (JSON `cluster`, `service`,
`deploymentId`, `rolloutState` COMPLETED|FAILED, optional `reason`) ends a rollout the way ECS
would once tasks are healthy (COMPLETED: the other deployments are drained) or the circuit
breaker tripped (FAILED). The shipgate sandbox's event pump uses it; production code never does.

CloudFormation stack parameters as CloudFormation answers them: moto 5.2 answers a
CommaDelimitedList parameter of DescribeStacks as a Python list's repr (`['a', 'b']`); here it is
the comma-joined string CloudFormation answers (`a,b`). `shipgate doctor` reads the sandbox's
stand-in stack through it.
"""

import json
import os
import random
import signal
import sys
import threading

ACCOUNT = "123456789012"
# ECS keeps replaced deployments (ACTIVE) until they are drained; a bound only against runaway growth
KEEP_DEPLOYMENTS = 200


def patch_ecs_deployments() -> None:
    from moto.core.utils import utcnow
    from moto.ecs import models

    backend_class = models.EC2ContainerServiceBackend
    original = backend_class.update_service

    def update_service(self, props):
        cluster = props.get("cluster", "default")
        name = str(props.get("service", "")).split("/")[-1]
        wanted = props.get("task_definition")
        force = bool(props.get("force_new_deployment"))
        try:
            before = self._get_service(cluster, name)
            before_td = before.task_definition
            before_deployments = [dict(d) for d in before.deployments]
        except Exception:  # moto raises the proper error below
            before = None
        service = original(self, props)
        if before is None or service.deployment_controller.get("type") != "ECS":
            return service
        if not (force or (wanted and service.task_definition != before_td)):
            service.deployments = before_deployments
            return service
        now = utcnow()
        template = before_deployments[0] if before_deployments else {}
        deployment_id = f"ecs-svc/{random.randint(0, 32**12)}"
        for d in before_deployments:
            if d.get("status") == "PRIMARY":
                d["status"] = "ACTIVE"
                d["updatedAt"] = now
        new = dict(template)
        new.update(
            {
                "id": deployment_id,
                "status": "PRIMARY",
                "taskDefinition": service.task_definition,
                "createdAt": now,
                "updatedAt": now,
                "rolloutState": "IN_PROGRESS",
                "rolloutStateReason": f"ECS deployment {deployment_id} in progress.",
                "desiredCount": service.desired_count,
                "runningCount": 0,
                "pendingCount": service.desired_count,
                "failedTasks": 0,
            }
        )
        service.deployments = [new] + before_deployments[: KEEP_DEPLOYMENTS - 1]
        return service

    backend_class.update_service = update_service


def ecs_rollout(body: bytes):
    """End a rollout: answers (HTTP status, JSON)."""
    from moto.ecs.models import ecs_backends

    try:
        req = json.loads(body or b"{}")
        cluster, name, deployment_id = req["cluster"], req["service"], req["deploymentId"]
        state = req["rolloutState"]
    except (ValueError, KeyError, TypeError) as exc:
        return 400, {"message": f"bad request: {exc}"}
    if state not in ("COMPLETED", "FAILED"):
        return 400, {"message": f"rolloutState must be COMPLETED or FAILED, not {state!r}"}
    backend = ecs_backends[req.get("account", ACCOUNT)][req.get("region", "us-east-1")]
    try:
        service = backend._get_service(cluster, name)
    except Exception as exc:
        return 404, {"message": f"service {cluster}/{name}: {exc}"}
    ours = next((d for d in service.deployments if d.get("id") == deployment_id), None)
    if ours is None:
        return 404, {"message": f"no deployment {deployment_id} in {cluster}/{name}"}
    from moto.core.utils import utcnow

    ours["rolloutState"] = state
    ours["updatedAt"] = utcnow()
    if state == "COMPLETED":
        ours["rolloutStateReason"] = f"ECS deployment {deployment_id} completed."
        ours["runningCount"], ours["pendingCount"] = ours.get("desiredCount", 1), 0
        if ours.get("status") == "PRIMARY":
            service.deployments = [ours]
    else:
        ours["rolloutStateReason"] = req.get("reason") or "tasks failed to start"
        ours["failedTasks"] = max(1, int(ours.get("failedTasks") or 0))
    return 200, {"deploymentId": deployment_id, "rolloutState": state}


def patch_ecs_deployment_configuration() -> None:
    """moto 5.2 drops a service's deploymentConfiguration (the circuit breaker among it); ECS
    keeps it and DescribeServices answers it. `shipgate doctor` checks the circuit breaker."""
    from moto.ecs import responses

    cls = responses.EC2ContainerServiceResponse
    original_create = cls.create_service
    original_update = cls.update_service

    def create_service(self):
        result = original_create(self)
        config = self._get_param("deploymentConfiguration")
        if config:
            service = self.ecs_backend._get_service(
                self._get_param("cluster", "default"), self._get_param("serviceName")
            )
            service.deployment_configuration = config
        return result

    def update_service(self):
        result = original_update(self)
        config = self._get_param("deploymentConfiguration")
        if config:
            service = self.ecs_backend._get_service(
                self._get_param("cluster", "default"),
                str(self._get_param("service", "")).split("/")[-1],
            )
            previous = getattr(service, "deployment_configuration", None) or {}
            service.deployment_configuration = {**previous, **config}
        return result

    cls.create_service = create_service
    cls.update_service = update_service


def patch_cloudformation_parameters() -> None:
    from moto.cloudformation import models

    def parameter_list(self):
        hidden = self.resource_map.no_echo_parameter_keys
        return [
            {
                "ParameterKey": k,
                "ParameterValue": "****"
                if k in hidden
                else (",".join(str(x) for x in v) if isinstance(v, list) else v),
            }
            for k, v in self.resource_map.resolved_parameters.items()
        ]

    models.Stack.parameter_list = property(parameter_list)


def main() -> None:
    # Ctrl-C in a terminal signals the whole process group: the process that started this server
    # decides when it stops (it kills it, or its exit closes our stdin)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    try:
        from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server
    except ImportError as exc:  # pragma: no cover - reported to the caller
        print(f"ERROR moto is not installed: {exc}", flush=True)
        sys.exit(3)
    app = DomainDispatcherApplication(create_backend_app)
    patch_ecs_deployments()
    patch_cloudformation_parameters()
    patch_ecs_deployment_configuration()
    lock = threading.Lock()

    def serialized(environ, start_response):
        if environ.get("PATH_INFO") == "/_shipgate/ecs/rollout":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(size) if size > 0 else b""
            with lock:
                status, answer = ecs_rollout(body)
            text = json.dumps(answer).encode()
            reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
            start_response(
                f"{status} {reason}",
                [("Content-Type", "application/json"), ("Content-Length", str(len(text)))],
            )
            return [text]
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
