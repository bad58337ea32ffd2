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
    assert str(translate(NoCredentialsError(), resource="prod:us-east-1")) == "environment prod: no AWS credentials found"

