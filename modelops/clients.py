"""The one seam to boto3: clients per (environment, region), on the local cloud or on AWS.

Nothing else in modelops knows which cloud an environment runs on: build, deploy, verify and the
ledger ask :func:`clients_for` for a :class:`Clients` and call ``.client(service, region)``.

- **local**: the services the local cloud serves (``sagemaker``, ``sagemaker-runtime``,
  ``cloudwatch``) point at it through ``endpoint_url``; it is started on first use. Credentials are a
  fixed local key (it accepts any); the region travels in SigV4's credential scope as on AWS.
- **aws**: a session from the environment's profile (or the default chain), and, when the
  environment names a role, that role assumed through STS with credentials that refresh themselves
  before they expire (a prod rollout can outlast one STS session). Standard retry mode with backoff
  for throttling; a service that cannot be reached fails after two tries and short timeouts.

botocore errors are translated here (:func:`translate`), so callers raise modelops errors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelops.errors import (
    CloudUnreachableError,
    EnvironmentFailedError,
    InputError,
    ModelopsError,
    is_unreachable,
)

if TYPE_CHECKING:
    import boto3

    from modelops.config import Environment
    from modelops.runtime import Runtime

LOCAL_SERVICES = frozenset({"sagemaker", "sagemaker-runtime", "cloudwatch"})
LOCAL_ACCESS_KEY = "modelops-local"
LOCAL_SECRET_KEY = "modelops-local-secret"  # the local cloud accepts any key

NOT_LOCAL_SERVICE = "environment {env}: service {service!r} is not served by the local cloud"
NOT_LOCAL_SERVICE_HINT = "the local cloud serves sagemaker, sagemaker-runtime and cloudwatch; use an aws environment"
NO_CREDENTIALS = "environment {env}: no AWS credentials found"
PROFILE_NOT_FOUND = "environment {env}: AWS profile {profile!r} not found"
NO_CREDENTIALS_HINT = (
    "set a profile or role under environments.{env}.aws in pipelines/environments.yaml, "
    "or provide credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, an instance role)"
)
UNREACHABLE = "{resource}: cannot reach {url}"
UNREACHABLE_HINT = "check the network and the service's endpoint (AWS_ENDPOINT_URL, if set)"
LOCAL_UNREACHABLE_HINT = "the local cloud is not answering: see `modelops local status` and `modelops local logs`"
ACCESS_DENIED = "{resource}: access denied ({code}): {message}"
ACCESS_DENIED_HINT = "the role modelops uses in this environment lacks a permission"
THROTTLED = "{resource}: throttled by the service after retries ({code})"
CLOUD_ERROR = "{resource}: {code}: {message}"
ASSUME_ROLE = "{env}: assume role {role} (sts, {region})"
CALLER_IDENTITY = "{env}: who the credentials belong to (sts get-caller-identity, {region})"

_NOT_FOUND_CODES = frozenset({"ResourceNotFound", "ResourceNotFoundException", "NoSuchEntity", "NotFound"})
_ACCESS_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                           "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId"})
_THROTTLE_CODES = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException",
                             "RequestLimitExceeded", "ProvisionedThroughputExceededException"})


class Clients:
    """boto3 clients of one environment, created once per (service, region) and shared by threads.

    boto3 clients are thread-safe once made, but making them from one session is not, so creation
    is serialised under a lock (waves deploy regions in parallel threads).
    """

    def __init__(self, environment: Environment, runtime: Runtime,
                 *, session_factory: Callable[[], boto3.Session] | None = None):
        self.environment = environment
        self.cloud = environment.cloud
        self.account = environment.account
        self._runtime = runtime
        self._session_factory = session_factory
        self._session: boto3.Session | None = None
        self._local_url: str | None = None
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._caller: str | None = None

    @property
    def is_local(self) -> bool:
        return self.cloud == "local"

    def client(self, service: str, region: str) -> Any:
        """A boto3 client for ``service`` in ``region`` of this environment's cloud."""
        key = (service, region)
        with self._lock:
            made = self._clients.get(key)
            if made is None:
                made = self._local_client(service, region) if self.is_local else self._aws_client(service, region)
                self._clients[key] = made
            return made

    def signing_credentials(self) -> tuple[str, str, str | None]:
        """(access key, secret key, session token) this environment's clients sign with, frozen now:
        for signers outside boto3, such as the load generator's SigV4 users."""
        if self.is_local:
            return LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY, None
        credentials = self._aws_session().get_credentials()
        if credentials is None:
            from botocore.exceptions import NoCredentialsError

            raise NoCredentialsError()
        frozen = credentials.get_frozen_credentials()
        return frozen.access_key, frozen.secret_key, frozen.token

    def caller_arn(self) -> str | None:
        """The ARN STS says this environment's credentials belong to (an IAM user, or an assumed
        role and its session), asked once; None on the local cloud, which authenticates nobody."""
        if self.is_local:
            return None
        if self._caller is None:
            from botocore.exceptions import BotoCoreError, ClientError

            region = self.environment.regions[0]
            try:
                self._caller = str(self.client("sts", region).get_caller_identity()["Arn"])
            except (BotoCoreError, ClientError) as exc:
                raise translate(exc, resource=CALLER_IDENTITY.format(env=self.environment.name, region=region)) from exc
        return self._caller

    def local_url(self) -> str:
        """The local cloud's URL (started on demand). Only for local environments."""
        if self._local_url is None:
            from modelops import localcloud

            self._local_url = localcloud.ensure_running(self._runtime.local_cloud_dir).url
        return self._local_url

    def _local_client(self, service: str, region: str) -> Any:
        if service not in LOCAL_SERVICES:
            raise InputError(NOT_LOCAL_SERVICE.format(env=self.environment.name, service=service),
                             hint=NOT_LOCAL_SERVICE_HINT)
        from botocore.config import Config

        url = self.local_url()  # starts the local cloud if needed: outside the shared session's lock
        # Local calls fail fast when the server is gone; InvokeEndpoint may take the 60 s the
        # container contract allows.
        config = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5, read_timeout=70,
                        max_pool_connections=50)
        key = (url, service, region)
        with _LOCAL_SESSION_LOCK:  # one session for every local client: its loader parses each model once
            made = _LOCAL_CLIENTS.get(key)
            if made is None:
                made = _local_session().client(service, region_name=region, endpoint_url=url,
                                               aws_access_key_id=LOCAL_ACCESS_KEY,
                                               aws_secret_access_key=LOCAL_SECRET_KEY, config=config)
                _LOCAL_CLIENTS[key] = made
                while len(_LOCAL_CLIENTS) > LOCAL_CLIENTS_KEPT:  # the oldest: a local cloud since stopped, likely
                    del _LOCAL_CLIENTS[next(iter(_LOCAL_CLIENTS))]
            return made

    def _aws_client(self, service: str, region: str) -> Any:
        return _aws_client(self._aws_session(), service, region)

    def _aws_session(self) -> boto3.Session:
        if self._session is None:
            self._session = self._session_factory() if self._session_factory else self._make_aws_session()
        return self._session

    def _make_aws_session(self) -> boto3.Session:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

        access = self.environment.aws
        try:
            base = boto3.Session(profile_name=access.profile) if access.profile else boto3.Session()
        except ProfileNotFound as exc:
            raise InputError(PROFILE_NOT_FOUND.format(env=self.environment.name, profile=access.profile),
                             hint=NO_CREDENTIALS_HINT.format(env=self.environment.name)) from exc
        if not access.role_arn:
            return base
        # STS needs a region even where none is configured (a CI agent with only keys): the environment's.
        region = base.region_name or self.environment.regions[0]
        try:
            return _assumed_role_session(base, access.role_arn, session_name=_session_name(self._runtime.user),
                                         region=region)
        except (BotoCoreError, ClientError) as exc:  # the first AssumeRole runs here, not in a caller's call
            raise translate(exc, resource=ASSUME_ROLE.format(env=self.environment.name, region=region,
                                                             role=access.role_arn)) from exc


# Local clients come from one shared session (made lazily): a fresh session per client re-reads
# botocore's endpoint and service JSON each time (~0.3 s a client; a deploy through prod makes ~20).
# Making clients from one session is not thread-safe, hence the module lock.
_LOCAL_SESSION_LOCK = threading.Lock()
_LOCAL_SESSIONS: list[boto3.Session] = []
# ... and each client is made once per local cloud, (url, service, region), shared by the environments
# of the process: dev, staging and prod of one `deploy --through prod` are one local cloud, and a
# client costs ~10 ms to make plus its first call's warm-up (boto3 clients are thread-safe once made).
_LOCAL_CLIENTS: dict[tuple[str, str, str], Any] = {}
LOCAL_CLIENTS_KEPT = 32


def _local_session() -> boto3.Session:
    if not _LOCAL_SESSIONS:
        import boto3

        from modelops.localcloud import botocore_session

        _LOCAL_SESSIONS.append(boto3.session.Session(botocore_session=botocore_session()))
    return _LOCAL_SESSIONS[0]


# On AWS, throttling is retried with backoff (10 attempts: parallel regions poll the same APIs); a
# service that cannot be reached is not, beyond one more try: botocore's standard mode would retry a
# refused connection for ~20 s and a silent one (connects, never answers) for 10 x 60 s, a CI job
# hanging for minutes before saying "cannot reach". Control-plane calls answer in a second or two;
# InvokeEndpoint may take the 60 s the container contract allows.
AWS_MAX_ATTEMPTS = 10
AWS_CONNECTION_ATTEMPTS = 2
AWS_CONNECT_TIMEOUT = 5
AWS_READ_TIMEOUT = 15
AWS_RUNTIME_READ_TIMEOUT = 70


def _aws_client(session: Any, service: str, region: str | None) -> Any:
    """A client of ``service`` on AWS: standard retries for throttling, fail fast when unreachable."""
    from botocore.config import Config

    client = session.client(
        service,
        region_name=region,
        config=Config(retries={"mode": "standard", "max_attempts": AWS_MAX_ATTEMPTS}, max_pool_connections=50,
                      connect_timeout=AWS_CONNECT_TIMEOUT,
                      read_timeout=AWS_RUNTIME_READ_TIMEOUT if service == "sagemaker-runtime" else AWS_READ_TIMEOUT),
    )
    client.meta.events.register_first(f"needs-retry.{client.meta.service_model.service_id.hyphenize()}",
                                      _stop_retrying_unreachable)
    return client


def _stop_retrying_unreachable(attempts: int, caught_exception: BaseException | None = None, **_: Any) -> None:
    """``needs-retry`` hook: after :data:`AWS_CONNECTION_ATTEMPTS` tries, a connection error or timeout
    ends the call (raised as is, so :func:`translate` says "cannot reach") instead of being retried
    up to :data:`AWS_MAX_ATTEMPTS` times with backoff."""
    if caught_exception is not None and is_unreachable(caught_exception) and attempts >= AWS_CONNECTION_ATTEMPTS:
        raise caught_exception


def _session_name(user: str) -> str:
    """STS RoleSessionName: ``[\\w+=,.@-]{2,64}``; the acting user shows in CloudTrail."""
    cleaned = "".join(c if c.isalnum() or c in "+=,.@-_" else "-" for c in user)
    return f"modelops-{cleaned}"[:64]


def _assumed_role_session(base: boto3.Session, role_arn: str, *, session_name: str, region: str) -> boto3.Session:
    """A session whose credentials come from ``role_arn`` and refresh before they expire."""
    import boto3
    import botocore.session
    from botocore.credentials import RefreshableCredentials

    sts = _aws_client(base, "sts", region)

    def fetch() -> dict[str, str]:
        creds = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
        return {"access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"], "expiry_time": creds["Expiration"].isoformat()}

    core = botocore.session.get_session()
    core._credentials = RefreshableCredentials.create_from_metadata(  # the way botocore sessions take refreshable credentials
        metadata=fetch(), refresh_using=fetch, method="sts-assume-role")
    return boto3.Session(botocore_session=core, region_name=base.region_name)


def clients_for(environment: Environment, runtime: Runtime) -> Clients:
    """The client factory of one environment (cheap; nothing connects until ``.client``)."""
    return Clients(environment, runtime)


def error_code(exc: BaseException) -> str | None:
    """The service error code of a botocore ``ClientError``, else None."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def error_message(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Message", "")) or str(exc)
    return str(exc)


def is_not_found(exc: BaseException) -> bool:
    """SageMaker says "not found" as a ValidationException "Could not find ..."; others by code."""
    code = error_code(exc)
    if code in _NOT_FOUND_CODES:
        return True
    return code in {"ValidationException", "ValidationError"} and (
        "could not find" in error_message(exc).lower() or "not found" in error_message(exc).lower())


def translate(exc: Exception, *, resource: str) -> ModelopsError:
    """A botocore/boto3 exception as the modelops error a user can act on (``raise ... from exc``)."""
    from botocore import exceptions as bx

    if isinstance(exc, ModelopsError):
        return exc
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        env = resource.split(":", 1)[0].split("/", 1)[0]  # "dev:us-east-1:..." or "dev/us-east-1: endpoint ..."
        return EnvironmentFailedError(NO_CREDENTIALS.format(env=env), hint=NO_CREDENTIALS_HINT.format(env=env))
    if is_unreachable(exc):
        url = getattr(exc, "kwargs", {}).get("endpoint_url", "the service")
        local = str(url).startswith(("http://127.0.0.1:", "http://localhost:"))
        return CloudUnreachableError(UNREACHABLE.format(resource=resource, url=url),
                                     hint=LOCAL_UNREACHABLE_HINT if local else UNREACHABLE_HINT)
    code = error_code(exc)
    if code is None:
        return EnvironmentFailedError(CLOUD_ERROR.format(resource=resource, code=type(exc).__name__,
                                                         message=str(exc)))
    message = error_message(exc)
    if code in _ACCESS_CODES:
        return EnvironmentFailedError(ACCESS_DENIED.format(resource=resource, code=code, message=message),
                                      hint=ACCESS_DENIED_HINT)
    if code in _THROTTLE_CODES:
        return EnvironmentFailedError(THROTTLED.format(resource=resource, code=code))
    if code in {"ValidationException", "ValidationError", "ResourceLimitExceeded", "ResourceInUse"}:
        return InputError(CLOUD_ERROR.format(resource=resource, code=code, message=message))
    return EnvironmentFailedError(CLOUD_ERROR.format(resource=resource, code=code, message=message))
