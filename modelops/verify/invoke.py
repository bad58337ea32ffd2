"""The one seam to the SageMaker runtime API for single requests: ``InvokeEndpoint`` through a boto3
``sagemaker-runtime`` client (SigV4-signed by botocore), answers and service errors alike turned into
an :class:`Invocation` (status, body, latency). Only a cloud that cannot be reached raises (and, when
asked, a service error that is not the container's). Regression cases, synthetic traffic and
``modelops invoke`` (:func:`invoke_model`) all send through :func:`invoke`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelops.config.cases import CaseRequest
from modelops.runtime import Clock, Runtime

MODEL_ERROR = "ModelError"  # SageMaker's error code for "the container answered 4xx/5xx"


@dataclass(frozen=True)
class Invocation:
    """One InvokeEndpoint call as the client saw it. A service error (SageMaker's ModelError is HTTP
    424: the container answered 4xx/5xx) is an invocation with that status, ``error_code`` and the
    service's message as ``body``."""

    status: int
    body: bytes
    latency_ms: float
    content_type: str | None = None
    error_code: str | None = None
    original_status: int | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def describe(self) -> str:
        """``200``, or ``424 ModelError (container 400): message``: for failure messages."""
        if self.ok:
            return str(self.status)
        text = self.body.decode("utf-8", "replace").strip().replace("\n", " ")
        inner = f" (container {self.original_status})" if self.original_status else ""
        return f"{self.status} {self.error_code or 'error'}{inner}: {text[:200]}"


def invoke(client: Any, endpoint: str, request: CaseRequest, clock: Clock, *, resource: str,
           raise_service_errors: bool = False, target_variant: str | None = None) -> Invocation:
    """Send ``request`` to ``endpoint`` through a boto3 ``sagemaker-runtime`` client.

    A ModelError (the container answered 4xx/5xx, or did not answer) is always an invocation: it is
    the model's answer. Other service errors (no such endpoint, access denied, throttled) are
    invocations too, for callers that count them (regression cases, synthetic traffic); with
    ``raise_service_errors`` they raise the translated modelops error instead, for a command sending
    one request. A cloud that cannot be reached raises either way. ``target_variant``: the variant
    to send to (``TargetVariant``), whatever its weight."""
    from botocore.exceptions import ClientError

    from modelops.clients import translate

    kwargs: dict[str, Any] = {"EndpointName": endpoint, "Body": request.body, "ContentType": request.content_type,
                              "Accept": request.accept}
    if request.custom_attributes:
        kwargs["CustomAttributes"] = request.custom_attributes
    if target_variant:
        kwargs["TargetVariant"] = target_variant
    start = clock.monotonic()
    try:
        answer = client.invoke_endpoint(**kwargs)
        body = answer["Body"].read()
    except ClientError as exc:
        latency = (clock.monotonic() - start) * 1000.0
        meta = exc.response.get("ResponseMetadata", {})
        error = exc.response.get("Error", {})
        if raise_service_errors and error.get("Code") != MODEL_ERROR:
            raise translate(exc, resource=resource) from exc
        original = exc.response.get("OriginalStatusCode")
        message = exc.response.get("OriginalMessage") or error.get("Message") or str(exc)
        return Invocation(status=int(meta.get("HTTPStatusCode") or 500), body=str(message).encode(),
                          latency_ms=latency, error_code=error.get("Code"),
                          original_status=int(original) if original else None)
    except Exception as exc:  # connection failures and the like: the environment, not the model
        raise translate(exc, resource=resource) from exc
    latency = (clock.monotonic() - start) * 1000.0
    return Invocation(status=int(answer["ResponseMetadata"]["HTTPStatusCode"]), body=body, latency_ms=latency,
                      content_type=answer.get("ContentType"))


@dataclass(frozen=True)
class InvokeRequest:
    """``modelops invoke``: one request to ``model``'s endpoint in ``environment`` (first region unless given)."""

    model: str
    environment: str
    body: bytes
    region: str | None = None
    content_type: str = "application/json"
    accept: str = "application/json"


@dataclass(frozen=True)
class InvokeResult:
    """The answer, in the vocabulary of every modelops report: ``status`` is what InvokeEndpoint answered
    (424 for SageMaker's ModelError), ``model_status`` the container's own status inside a ModelError."""

    endpoint: str
    region: str
    status: int
    content_type: str
    body: bytes
    error: str | None = None  # the service's error code (ModelError, ...)
    model_status: int | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def describe(self) -> str:
        """``HTTP 200``, or ``HTTP 424 ModelError (the container answered 500)``."""
        text = f"HTTP {self.status}" + (f" {self.error}" if self.error else "")
        return text + (f" (the container answered {self.model_status})" if self.model_status else "")

    def to_dict(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "region": self.region, "status": self.status, "error": self.error,
                "model_status": self.model_status, "content_type": self.content_type,
                "body": self.body.decode("utf-8", "replace")}


def invoke_model(request: InvokeRequest, runtime: Runtime) -> InvokeResult:
    """Send one request to a model's endpoint in an environment; a ModelError is an answer with the
    container's status, any other service error raises (a missing endpoint says how to deploy it)."""
    from modelops import naming
    from modelops.clients import clients_for
    from modelops.config import Workspace, check_runs, load_environments, load_model
    from modelops.errors import InputError
    from modelops.verify.service import ENDPOINT_MISSING, ENDPOINT_MISSING_HINT

    ws = Workspace.discover(runtime.cwd)
    env = load_environments(ws).get(request.environment)
    model = load_model(ws, request.model)
    region = request.region or env.regions[0]
    env.check_regions((region,))
    endpoint = naming.endpoint_name(model.name, env.name)
    clients = clients_for(env, runtime)
    try:
        answer = invoke(clients.client("sagemaker-runtime", region), endpoint,
                        CaseRequest(content_type=request.content_type, accept=request.accept, body=request.body),
                        runtime.clock, resource=f"{env.name}/{region}: endpoint {endpoint}", raise_service_errors=True)
    except InputError as err:
        if not _endpoint_exists(clients.client("sagemaker", region), endpoint):
            check_runs(model, env)  # say why there can be none, when there cannot
            raise InputError(ENDPOINT_MISSING.format(endpoint=endpoint, region=region, env=env.name),
                             hint=ENDPOINT_MISSING_HINT.format(model=model.name, env=env.name)) from err
        raise
    return InvokeResult(endpoint, region, answer.status, answer.content_type or ("" if answer.ok else "text/plain"),
                        answer.body, answer.error_code, answer.original_status)


def _endpoint_exists(sm: Any, endpoint: str) -> bool:
    from modelops.clients import is_not_found

    try:
        sm.describe_endpoint(EndpointName=endpoint)
    except Exception as exc:
        if is_not_found(exc):
            return False
        raise
    return True
