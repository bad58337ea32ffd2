"""The client factory: local environments reach only what the local cloud serves; aws environments
assume their role through STS (moto) and errors become modelops errors."""

from __future__ import annotations

import pytest

from modelops.clients import NOT_LOCAL_SERVICE, PROFILE_NOT_FOUND, clients_for, is_not_found, translate
from modelops.config import Environment
from modelops.config.environments import AwsAccess
from modelops.errors import EnvironmentFailedError, ExitStatus, InputError
from modelops.runtime import Runtime


def _env(cloud: str, **aws: str) -> Environment:
    return Environment(name="prod", cloud=cloud, account="123456789012", regions=("us-east-1",),
                       waves=(("us-east-1",),),                        aws=AwsAccess(**aws))


def _runtime(tmp_path) -> Runtime:
    return Runtime(cwd=tmp_path, data_dir=tmp_path, environ={"MODELOPS_USER": "ana@example.com"})


def test_local_environment_refuses_services_the_local_cloud_does_not_serve(tmp_path):
    clients = clients_for(_env("local"), _runtime(tmp_path))
    with pytest.raises(InputError) as err:
        clients.client("ecr", "us-east-1")
    assert str(err.value) == NOT_LOCAL_SERVICE.format(env="prod", service="ecr")


def test_an_unknown_aws_profile_is_bad_input_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    clients = clients_for(_env("aws", profile="no-such-profile"), _runtime(tmp_path))
    with pytest.raises(InputError) as err:
        clients.client("sagemaker", "us-east-1")
    assert str(err.value) == PROFILE_NOT_FOUND.format(env="prod", profile="no-such-profile")


def test_aws_environment_assumes_its_role_and_caches_clients(tmp_path, monkeypatch):
    moto = pytest.importorskip("moto")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with moto.mock_aws():
        role = "arn:aws:iam::123456789012:role/modelops-deployer"
        clients = clients_for(_env("aws", role_arn=role), _runtime(tmp_path))
        sts = clients.client("sts", "eu-west-1")
        assert clients.client("sts", "eu-west-1") is sts
        identity = sts.get_caller_identity()
        assert ":assumed-role/modelops-deployer/modelops-ana@example.com" in identity["Arn"]
        # The load generator signs with the role's session credentials, not the base ones.
        access_key, secret_key, token = clients.signing_credentials()
        assert access_key != "testing" and secret_key != "testing" and token


def test_local_signing_credentials_are_the_local_clouds(tmp_path):
    from modelops.clients import LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY

    clients = clients_for(_env("local"), _runtime(tmp_path))
    assert clients.signing_credentials() == (LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY, None)


def test_botocore_errors_become_modelops_errors():
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    missing = ClientError({"Error": {"Code": "ValidationException",
                                     "Message": "Could not find endpoint \"arn:...:endpoint/iris-dev\"."}},
                          "DescribeEndpoint")
    assert is_not_found(missing)
    assert translate(missing, resource="dev:us-east-1:iris-dev").exit_status == ExitStatus.BAD_INPUT
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "CreateModel")
    assert not is_not_found(denied)
    assert isinstance(translate(denied, resource="prod:us-east-1"), EnvironmentFailedError)
    down = translate(EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), resource="dev:us-east-1")
    assert "cannot reach http://127.0.0.1:9" in str(down)
    assert down.hint is not None and "modelops local status" in down.hint  # the local cloud's address
    far = translate(EndpointConnectionError(endpoint_url="https://api.sagemaker.eu-west-1.amazonaws.com"),
                    resource="prod:eu-west-1")
    assert far.hint is not None and "local" not in far.hint and "network" in far.hint  # AWS: no local cloud advice
    assert str(translate(NoCredentialsError(), resource="prod:us-east-1")) == "environment prod: no AWS credentials found"
    # deploy names resources "env/region: ..."; the hint must still name environments.<env>.aws
    no_keys = translate(NoCredentialsError(), resource="dev/us-east-1: endpoint iris-dev")
    assert str(no_keys) == "environment dev: no AWS credentials found"
    assert "environments.dev.aws in pipelines/environments.yaml" in (no_keys.hint or "")



class _CountingServer:
    """A real HTTP server on a free loopback port: ``throttle`` answers of ThrottlingException, then
    DescribeEndpoint's; with ``hang_up`` it accepts each connection and closes it unanswered."""

    def __init__(self, *, throttle: int = 0, hang_up: bool = False):
        import http.server
        import json
        import threading

        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if hang_up:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                throttled = outer.requests <= throttle
                body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"} if throttled
                                  else {"EndpointName": "iris-prod", "EndpointStatus": "InService"}).encode()
                self.send_response(400 if throttled else 200)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def aws_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    return monkeypatch


def test_an_aws_service_that_hangs_up_is_tried_twice_not_ten_times(tmp_path, aws_keys):
    # botocore's standard mode would retry a connection error 9 times with backoff (~20 s for a refused
    # port, 10 x 60 s for one that never answers): a CI job hanging before it says "cannot reach".
    from botocore.exceptions import ConnectionClosedError

    from modelops.clients import AWS_CONNECTION_ATTEMPTS

    server = _CountingServer(hang_up=True)
    aws_keys.setenv("AWS_ENDPOINT_URL", server.url)
    try:
        client = clients_for(_env("aws"), _runtime(tmp_path)).client("sagemaker", "us-east-1")
        with pytest.raises(ConnectionClosedError) as err:
            client.describe_endpoint(EndpointName="iris-prod")
    finally:
        server.close()
    assert server.requests == AWS_CONNECTION_ATTEMPTS == 2
    translated = translate(err.value, resource="prod/us-east-1: endpoint iris-prod")
    assert isinstance(translated, EnvironmentFailedError) and "cannot reach" in str(translated)
    assert client.meta.config.connect_timeout <= 5 and client.meta.config.read_timeout <= 15


def test_throttling_is_still_retried_with_backoff(tmp_path, aws_keys, monkeypatch):
    monkeypatch.setattr("time.sleep", lambda seconds: None)  # botocore's backoff; the retries are what counts
    server = _CountingServer(throttle=3)
    aws_keys.setenv("AWS_ENDPOINT_URL", server.url)
    try:
        client = clients_for(_env("aws"), _runtime(tmp_path)).client("sagemaker", "us-east-1")
        answer = client.describe_endpoint(EndpointName="iris-prod")
    finally:
        server.close()
    assert answer["EndpointStatus"] == "InService"
    assert server.requests == 4


def test_invoke_endpoint_may_take_the_containers_60_seconds_on_aws(tmp_path, aws_keys):
    client = clients_for(_env("aws"), _runtime(tmp_path)).client("sagemaker-runtime", "us-east-1")
    assert client.meta.config.read_timeout > 60


def test_a_role_that_cannot_be_assumed_is_an_environment_failure_naming_it(tmp_path, aws_keys):
    # No region configured (a CI agent with only keys): STS is asked in the environment's first region.
    import socket

    aws_keys.delenv("AWS_DEFAULT_REGION", raising=False)
    aws_keys.delenv("AWS_REGION", raising=False)

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    aws_keys.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    role = "arn:aws:iam::123456789012:role/modelops-deployer"
    clients = clients_for(_env("aws", role_arn=role), _runtime(tmp_path))
    with pytest.raises(EnvironmentFailedError) as err:
        clients.client("sagemaker", "us-east-1")
    assert str(err.value).startswith(f"prod: assume role {role} (sts, us-east-1): cannot reach http://127.0.0.1:{port}")
    assert err.value.exit_status is ExitStatus.ENVIRONMENT
