"""The local cloud's control plane and runtime, driven only by stock boto3 clients (endpoint_url set)."""

from __future__ import annotations

import datetime
import json
import socket
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from modelops.localcloud import LOCAL_ACCOUNT
from modelops.localcloud.sagemaker_api import (
    INSTANCE_QUOTA,
    QUOTA_EXCEEDED,
    SERVERLESS_MEMORY,
    SERVERLESS_NOT_EMULATED,
)
from tests.localcloud_fixtures import (
    CRASHING_HANDLER,
    DJL_HANDLER,
    ECHO_FUNCTIONS,
    ECHO_HANDLER,
    FAILING_HANDLER,
    LocalCloud,
)

pytestmark = pytest.mark.slow


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


@pytest.fixture(scope="module")
def echo_uri(local_cloud: LocalCloud) -> str:
    return local_cloud.add_test_image("echo", {"inference.py": ECHO_HANDLER})


def test_an_endpoint_in_two_regions_answers_in_each_and_they_stay_apart(local_cloud: LocalCloud, echo_uri: str) -> None:
    request_ids = set()
    for region in ("us-east-1", "eu-west-1"):
        described = local_cloud.create_endpoint("iris-dev", echo_uri, region=region)
        assert described["EndpointArn"] == f"arn:aws:sagemaker:{region}:{LOCAL_ACCOUNT}:endpoint/iris-dev"
        assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 1
        runtime = local_cloud.client("sagemaker-runtime", region)
        answer = runtime.invoke_endpoint(EndpointName="iris-dev", Body=json.dumps({"region": region}),
                                         ContentType="application/json", Accept="application/json",
                                         CustomAttributes="trace=1")
        assert json.loads(answer["Body"].read()) == {"region": region}
        assert answer["InvokedProductionVariant"] == "AllTraffic"
        assert answer["ContentType"] == "application/json"
        request_ids.add(uuid.UUID(answer["ResponseMetadata"]["RequestId"]))  # the service's header, UUID-shaped
    assert len(request_ids) == 2
    listed = local_cloud.client("sagemaker", "eu-west-1").list_endpoints()["Endpoints"]
    assert [e["EndpointName"] for e in listed] == ["iris-dev"]
    with pytest.raises(ClientError) as missing:
        local_cloud.client("sagemaker", "ap-south-1").describe_endpoint(EndpointName="iris-dev")
    assert _error(missing) == (
        "ValidationException", f'Could not find endpoint "arn:aws:sagemaker:ap-south-1:{LOCAL_ACCOUNT}:endpoint/iris-dev".')
    with pytest.raises(ClientError) as unknown:
        local_cloud.client("sagemaker-runtime", "ap-south-1").invoke_endpoint(EndpointName="iris-dev", Body=b"{}")
    assert _error(unknown) == ("ValidationError", f"Endpoint iris-dev of account {LOCAL_ACCOUNT} not found.")


def test_model_errors_carry_the_container_status_and_payloads_over_6_mb_are_refused(local_cloud: LocalCloud) -> None:
    uri = local_cloud.add_test_image("failing", {"inference.py": FAILING_HANDLER})
    local_cloud.create_endpoint("broken-model", uri)
    runtime = local_cloud.client("sagemaker-runtime")
    with pytest.raises(ClientError) as failed:
        runtime.invoke_endpoint(EndpointName="broken-model", Body=b"{}", ContentType="application/json")
    error = failed.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 500
    assert "model exploded on purpose" in error["OriginalMessage"]
    assert error["LogStreamArn"].startswith(f"arn:aws:logs:us-east-1:{LOCAL_ACCOUNT}:log-group:/aws/sagemaker/Endpoints/")
    with pytest.raises(ClientError) as too_big:
        runtime.invoke_endpoint(EndpointName="broken-model", Body=b"x" * (6 * 1024 * 1024 + 1))
    assert _error(too_big)[0] == "ValidationError"
    assert "6291456" in _error(too_big)[1]


# The toolkit's default input_fn: a content type it cannot decode is the container's 415.
PICKY_HANDLER = '''
def model_fn(model_dir):
    return None

def predict_fn(data, model):
    return data

def output_fn(prediction, accept):
    return b"ok"
'''


def test_a_container_4xx_is_a_client_error_and_a_5xx_a_server_error(local_cloud: LocalCloud) -> None:
    # The service words a container's 4xx "Received client error (415) from primary ..." and its 5xx
    # "Received server error (500) ...": callers tell bad input from a broken model by it.
    uri = local_cloud.add_test_image("picky", {"inference.py": PICKY_HANDLER})
    local_cloud.create_endpoint("picky", uri)
    runtime = local_cloud.client("sagemaker-runtime")
    with pytest.raises(ClientError) as refused:
        runtime.invoke_endpoint(EndpointName="picky", Body=b"x", ContentType="application/x-unknown")
    code, message = _error(refused)
    assert code == "ModelError"
    assert refused.value.response["OriginalStatusCode"] == 415
    assert message.startswith("Received client error (415) from primary with message"), message
    with pytest.raises(ClientError) as broken:  # a body the default JSON decoder chokes on: the toolkit's 500
        runtime.invoke_endpoint(EndpointName="picky", Body=b"{not json", ContentType="application/json")
    assert broken.value.response["OriginalStatusCode"] == 500
    assert _error(broken)[1].startswith("Received server error (500) from primary with message"), _error(broken)[1]


def test_invoke_headers_past_their_limits_are_validation_errors(local_cloud: LocalCloud, echo_uri: str) -> None:
    # InvokeEndpoint's header members have limits in botocore's model that the stock client does not check
    # (CustomAttributes at most 1024 ASCII characters, InferenceId 1-64 printable ones): the service answers
    # ValidationError (400) and never forwards such a request to the container.
    local_cloud.create_endpoint("headers", echo_uri, region="ca-central-1")
    runtime = local_cloud.client("sagemaker-runtime", "ca-central-1")
    answer = runtime.invoke_endpoint(EndpointName="headers", Body=b"{}", ContentType="application/json",
                                     CustomAttributes="a" * 1024, InferenceId="i" * 64)
    assert answer["Body"].read() == b"{}"
    with pytest.raises(ClientError) as long_attributes:
        runtime.invoke_endpoint(EndpointName="headers", Body=b"{}", CustomAttributes="a" * 1025)
    code, message = _error(long_attributes)
    assert (code, long_attributes.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("ValidationError", 400)
    assert message == ("1 validation error detected: Value at 'customAttributes' failed to satisfy constraint: "
                       "Member must have length less than or equal to 1024")  # a sensitive value is not echoed
    with pytest.raises(ClientError) as long_id:
        runtime.invoke_endpoint(EndpointName="headers", Body=b"{}", InferenceId="i" * 65)
    assert _error(long_id)[0] == "ValidationError"
    assert "'inferenceId'" in _error(long_id)[1] and "less than or equal to 64" in _error(long_id)[1]


def test_traffic_splits_by_weight_and_target_variant_picks_one(local_cloud: LocalCloud, echo_uri: str) -> None:
    djl = local_cloud.add_test_image("djl", {"model.py": DJL_HANDLER}, contract="djl-python")
    local_cloud.create_model("split-echo", echo_uri)
    local_cloud.create_model("split-djl", djl)
    local_cloud.create_config("split-c1", [
        {"VariantName": "Echo", "ModelName": "split-echo", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1,
         "InitialVariantWeight": 3.0},
        {"VariantName": "Djl", "ModelName": "split-djl", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1,
         "InitialVariantWeight": 1.0}])
    local_cloud.client("sagemaker").create_endpoint(EndpointName="split", EndpointConfigName="split-c1")
    local_cloud.wait_for("split", "InService")
    runtime = local_cloud.client("sagemaker-runtime")
    counts = {"Echo": 0, "Djl": 0}
    for _ in range(200):
        answer = runtime.invoke_endpoint(EndpointName="split", Body=b'{"x": 1}', ContentType="application/json")
        counts[answer["InvokedProductionVariant"]] += 1
    # 3:1 weights; the bounds are far (over 6 sigma) from what a fair split produces.
    assert 110 < counts["Echo"] < 190, counts
    djl_answer = runtime.invoke_endpoint(EndpointName="split", Body=b'{"x": 1}', ContentType="application/json",
                                         TargetVariant="Djl")
    assert djl_answer["InvokedProductionVariant"] == "Djl"
    assert json.loads(djl_answer["Body"].read()) == {"djl": {"x": 1}}
    sm = local_cloud.client("sagemaker")
    sm.update_endpoint_weights_and_capacities(EndpointName="split", DesiredWeightsAndCapacities=[
        {"VariantName": "Djl", "DesiredWeight": 0.0}])
    described = local_cloud.wait_for("split", "InService")
    weights = {v["VariantName"]: v["CurrentWeight"] for v in described["ProductionVariants"]}
    assert weights == {"Echo": 3.0, "Djl": 0.0}
    assert {runtime.invoke_endpoint(EndpointName="split", Body=b"{}", ContentType="application/json")[
        "InvokedProductionVariant"] for _ in range(20)} == {"Echo"}
    with pytest.raises(ClientError) as bad_variant:
        runtime.invoke_endpoint(EndpointName="split", Body=b"{}", TargetVariant="Nope")
    assert _error(bad_variant)[0] == "ValidationError"


def test_a_container_that_cannot_start_fails_the_endpoint_quoting_its_log(local_cloud: LocalCloud) -> None:
    uri = local_cloud.add_test_image("crashing", {"inference.py": CRASHING_HANDLER})
    local_cloud.create_endpoint("crashes", uri, wait=False)
    described = local_cloud.wait_for("crashes", "Failed", "InService")
    assert described["EndpointStatus"] == "Failed"
    assert "did not pass the ping health check" in described["FailureReason"]
    assert "checksum mismatch on purpose" in described["FailureReason"]
    with pytest.raises(ClientError) as update:
        local_cloud.client("sagemaker").update_endpoint(EndpointName="crashes", EndpointConfigName="crashes-c1")
    assert _error(update)[0] == "ValidationException"
    local_cloud.client("sagemaker").delete_endpoint(EndpointName="crashes")


def test_an_unknown_image_fails_the_endpoint(local_cloud: LocalCloud) -> None:
    local_cloud.create_endpoint("no-image", "000000000000.dkr.ecr.us-east-1.amazonaws.com/missing:1", wait=False)
    described = local_cloud.wait_for("no-image", "Failed")
    assert "missing:1" in described["FailureReason"]


def test_resources_describe_list_tag_and_delete_like_the_service(local_cloud: LocalCloud, echo_uri: str) -> None:
    sm = local_cloud.client("sagemaker", "eu-central-1")
    arn = sm.create_model(ModelName="tagged", PrimaryContainer={"Image": echo_uri}, ExecutionRoleArn="arn:aws:iam::000000000000:role/r",
                          Tags=[{"Key": "modelops:release", "Value": "r1"}])["ModelArn"]
    assert arn == f"arn:aws:sagemaker:eu-central-1:{LOCAL_ACCOUNT}:model/tagged"
    assert sm.describe_model(ModelName="tagged")["PrimaryContainer"]["Image"] == echo_uri
    with pytest.raises(ClientError) as duplicate:
        sm.create_model(ModelName="tagged", PrimaryContainer={"Image": echo_uri}, ExecutionRoleArn="arn:aws:iam::000000000000:role/r")
    assert _error(duplicate) == ("ValidationException", f'Cannot create already existing model "{arn}".')
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "owner", "Value": "ada"}])
    assert {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]} == {"modelops:release": "r1", "owner": "ada"}
    sm.delete_tags(ResourceArn=arn, TagKeys=["owner"])
    assert [t["Key"] for t in sm.list_tags(ResourceArn=arn)["Tags"]] == ["modelops:release"]
    assert [m["ModelName"] for m in sm.list_models(NameContains="tag")["Models"]] == ["tagged"]
    with pytest.raises(ClientError) as no_model:
        sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "absent", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    assert _error(no_model) == (
        "ValidationException", f'Could not find model "arn:aws:sagemaker:eu-central-1:{LOCAL_ACCOUNT}:model/absent".')
    sm.delete_model(ModelName="tagged")
    with pytest.raises(ClientError):
        sm.describe_model(ModelName="tagged")


def test_bad_input_gets_the_service_error_shapes(local_cloud: LocalCloud) -> None:
    # botocore validates on the client too; switched off here so the server's own checks answer.
    sm = local_cloud.client("sagemaker", parameter_validation=False)
    with pytest.raises(ClientError) as bad_name:
        sm.describe_endpoint(EndpointName="not_valid!")
    code, message = _error(bad_name)
    assert code == "ValidationException"
    assert message == ("1 validation error detected: Value 'not_valid!' at 'endpointName' failed to satisfy constraint: "
                       "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
    with pytest.raises(ClientError) as missing:
        sm.create_endpoint(EndpointName="x")
    assert _error(missing) == ("ValidationException", "1 validation error detected: Value null at 'endpointConfigName' "
                                                      "failed to satisfy constraint: Member must not be null")
    with pytest.raises(ClientError) as too_long:
        sm.update_endpoint(EndpointName="iris-dev", EndpointConfigName="iris-dev-c1", DeploymentConfig={
            "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 4000}}})
    assert "Member must have value less than or equal to 3600" in _error(too_long)[1]
    with pytest.raises(ParamValidationError):  # the stock client's own check, for comparison
        local_cloud.client("sagemaker").create_endpoint(EndpointName="x")  # type: ignore[call-arg]

    def raw(target: str, body: bytes) -> tuple[int, dict[str, str]]:
        request = urllib.request.Request(local_cloud.url + "/", data=body, method="POST", headers={
            "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    assert raw("SageMaker.CreateTrainingJob", b"{}") == (400, {
        "__type": "UnknownOperationException", "message": "The operation CreateTrainingJob is not supported by the local cloud."})
    status, body = raw("SageMaker.DescribeEndpoint", b"{not json")
    assert (status, body["__type"]) == (400, "SerializationException")
    status, body = raw("SageMaker.DescribeEndpoint", b"[]")
    assert (status, body["__type"]) == (400, "SerializationException")


def test_the_other_protocols_answer_bad_input_in_their_shapes_too(local_cloud: LocalCloud) -> None:
    def raw(method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], dict]:
        request = urllib.request.Request(local_cloud.url + path, data=body or None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), json.loads(err.read())

    # CloudWatch (json 1.0, what stock botocore sends): a body that is not JSON, an operation it lacks.
    cloudwatch = {"Content-Type": "application/x-amz-json-1.0"}
    status, headers, _ = raw("POST", "/", b"{not json", {
        **cloudwatch, "X-Amz-Target": "GraniteServiceVersion20100801.DescribeAlarms"})
    assert (status, headers["x-amzn-query-error"]) == (400, "SerializationException;Sender")
    status, headers, _ = raw("POST", "/", b"{}", {
        **cloudwatch, "X-Amz-Target": "GraniteServiceVersion20100801.DescribeAnomalyDetectors"})
    assert (status, headers["x-amzn-query-error"]) == (400, "UnknownOperationException;Sender")
    # The runtime (rest-json): a path that is no operation.
    status, headers, body = raw("POST", "/endpoints/iris-dev/predict", b"{}", {"Content-Type": "application/json"})
    assert (status, body["__type"], headers["x-amzn-ErrorType"]) == (
        404, "UnknownOperationException", "UnknownOperationException")
    status, _, body = raw("GET", "/nothing/here", b"", {})
    assert (status, body["__type"]) == (404, "UnknownOperationException")
    # Not HTTP at all: a 400 in AWS's shape (the common MalformedHttpRequestException), and the connection closed.
    port = int(local_cloud.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ") and b"x-amzn-ErrorType: MalformedHttpRequestException\r\n" in answer
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["__type"] == "MalformedHttpRequestException"


def test_serverless_configs_are_refused_plainly_as_not_emulated(local_cloud: LocalCloud, echo_uri: str) -> None:
    # A serverless config used to be accepted, then served by an instance as if it were not serverless.
    sm = local_cloud.client("sagemaker")
    local_cloud.create_model("serverless-m1", echo_uri)

    def config(name: str, memory: int) -> dict[str, Any]:
        return {"EndpointConfigName": name, "ProductionVariants": [{
            "VariantName": "AllTraffic", "ModelName": "serverless-m1",
            "ServerlessConfig": {"MemorySizeInMB": memory, "MaxConcurrency": 1}}]}

    with pytest.raises(ClientError) as odd_memory:  # the API reference: 1 GB increments
        sm.create_endpoint_config(**config("serverless-c0", 1500))
    assert _error(odd_memory) == ("ValidationException", SERVERLESS_MEMORY.format(memory=1500, variant="AllTraffic"))
    with pytest.raises(ClientError) as refused:
        sm.create_endpoint_config(**config("serverless-c1", 2048))
    assert _error(refused) == ("ValidationException", SERVERLESS_NOT_EMULATED.format(variant="AllTraffic"))
    with pytest.raises(ClientError):
        sm.describe_endpoint_config(EndpointConfigName="serverless-c1")  # nothing was created


def test_instances_past_the_accounts_quota_are_refused_not_started(local_cloud: LocalCloud, echo_uri: str) -> None:
    # A config asking for a million instances was accepted and CreateEndpoint started processes until
    # the machine gave up. The service refuses with ResourceLimitExceeded, quoting the quota.
    region = "ap-southeast-3"  # a region of its own: the quota counts the region's instances of the type
    local_cloud.create_endpoint("elsewhere", echo_uri, region="ap-southeast-2", instances=2)  # another region's
    sm = local_cloud.client("sagemaker", region)
    local_cloud.create_model("many-m1", echo_uri, region=region)
    local_cloud.create_config("many-c1", {"AllTraffic": "many-m1"}, region=region, instances=1_000_000)
    with pytest.raises(ClientError) as refused:
        sm.create_endpoint(EndpointName="many", EndpointConfigName="many-c1")
    assert _error(refused) == ("ResourceLimitExceeded", QUOTA_EXCEEDED.format(
        instance_type="ml.m5.large", quota=INSTANCE_QUOTA, used=0, delta=1_000_000))
    assert sm.list_endpoints()["Endpoints"] == []

    local_cloud.create_endpoint("few", echo_uri, region=region, instances=2)
    with pytest.raises(ClientError) as scale_up:
        sm.update_endpoint_weights_and_capacities(EndpointName="few", DesiredWeightsAndCapacities=[
            {"VariantName": "AllTraffic", "DesiredInstanceCount": INSTANCE_QUOTA + 1}])
    assert _error(scale_up)[0] == "ResourceLimitExceeded"
    assert sm.describe_endpoint(EndpointName="few")["EndpointStatus"] == "InService"


def test_update_rules_of_the_spec_are_enforced(local_cloud: LocalCloud, echo_uri: str) -> None:
    sm = local_cloud.client("sagemaker")
    local_cloud.create_endpoint("rules", echo_uri)
    local_cloud.create_model("rules-m2", echo_uri)
    local_cloud.create_config("rules-renamed", {"Renamed": "rules-m2"})

    def update_error(config: str, deployment: dict[str, object]) -> str:
        with pytest.raises(ClientError) as refused:
            sm.update_endpoint(EndpointName="rules", EndpointConfigName=config, DeploymentConfig=deployment)
        assert _error(refused)[0] == "ValidationException"
        return _error(refused)[1]

    all_at_once = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 1}}}
    assert "keeps the variant names" in update_error("rules-renamed", all_at_once)
    assert "at most 50%" in update_error("rules-c1", {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
        "Type": "CANARY", "WaitIntervalInSeconds": 1, "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}}}})
    assert "MaximumExecutionTimeoutInSeconds (600)" in update_error("rules-c1", {"BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 3600},
        "TerminationWaitInSeconds": 600, "MaximumExecutionTimeoutInSeconds": 600}})
    assert "Only one of" in update_error("rules-c1", {**all_at_once, "RollingUpdatePolicy": {
        "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 50}, "WaitIntervalInSeconds": 1}})
    sm.update_endpoint(EndpointName="rules", EndpointConfigName="rules-c1")
    with pytest.raises(ClientError) as busy:
        sm.update_endpoint(EndpointName="rules", EndpointConfigName="rules-c1")
    assert _error(busy) == ("ValidationException", f'Cannot update in-progress endpoint "arn:aws:sagemaker:us-east-1:{LOCAL_ACCOUNT}:endpoint/rules".')
    local_cloud.wait_for("rules", "InService")
    # A DeploymentConfig without an update policy is blue/green all at once (botocore's DeploymentConfig:
    # "If no update policy is specified, SageMaker uses a blue/green deployment strategy with all at once
    # traffic shifting by default"), not an error.
    only_rollback = {"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "rules-5xx"}]}}
    sm.update_endpoint(EndpointName="rules", EndpointConfigName="rules-c1", DeploymentConfig=only_rollback)
    assert sm.describe_endpoint(EndpointName="rules")["EndpointStatus"] == "Updating"
    assert local_cloud.wait_for("rules", "InService")["LastDeploymentConfig"] == only_rollback
    sm.delete_endpoint(EndpointName="rules")
    local_cloud.client("sagemaker").get_waiter("endpoint_deleted").wait(
        EndpointName="rules", WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def test_list_endpoints_sorts_by_status_filters_on_last_modified_time_and_pages(
        local_cloud: LocalCloud, echo_uri: str) -> None:
    # ListEndpoints' SortBy is Name | CreationTime | Status and it filters on LastModifiedTimeBefore/After
    # besides CreationTime (botocore's ListEndpointsInput); a NextToken that is none of the server's is a
    # ValidationException, not an internal error.
    region = "ap-northeast-2"
    sm = local_cloud.client("sagemaker", region)
    local_cloud.create_endpoint("list-a", echo_uri, region=region)
    between = datetime.datetime.now(datetime.UTC)
    time.sleep(0.05)
    local_cloud.create_endpoint("list-b", "000000000000.dkr.ecr.us-east-1.amazonaws.com/missing:2", region=region,
                                wait=False)
    local_cloud.wait_for("list-b", "Failed", region=region)
    local_cloud.create_endpoint("list-c", echo_uri, region=region)

    def names(**kwargs: object) -> list[str]:
        return [e["EndpointName"] for e in sm.list_endpoints(**kwargs)["Endpoints"]]

    assert names(SortBy="Status", SortOrder="Ascending")[0] == "list-b"  # Failed < InService
    assert names(SortBy="Status", SortOrder="Descending")[-1] == "list-b"
    assert names(SortBy="Name", SortOrder="Ascending") == ["list-a", "list-b", "list-c"]
    assert names() == ["list-c", "list-b", "list-a"]  # CreationTime, Descending by default
    assert names(LastModifiedTimeBefore=between) == ["list-a"]
    assert sorted(names(LastModifiedTimeAfter=between)) == ["list-b", "list-c"]
    assert names(StatusEquals="Failed") == ["list-b"]
    assert names(NameContains="t-c") == ["list-c"]
    pages = list(sm.get_paginator("list_endpoints").paginate(SortBy="Name", SortOrder="Ascending",
                                                            PaginationConfig={"PageSize": 2}))
    assert [[e["EndpointName"] for e in page["Endpoints"]] for page in pages] == [["list-a", "list-b"], ["list-c"]]
    with pytest.raises(ClientError) as bad_token:
        sm.list_endpoints(NextToken="not-a-token")
    assert _error(bad_token)[0] == "ValidationException"
    assert bad_token.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    arn = sm.describe_endpoint(EndpointName="list-a")["EndpointArn"]
    with pytest.raises(ClientError) as bad_tags_token:
        sm.list_tags(ResourceArn=arn, NextToken="not-a-token")
    assert _error(bad_tags_token)[0] == "ValidationException"


# A model that takes a while to load: its instances stay unhealthy (no port yet) for two seconds.
SLOW_HANDLER = '''
import time

def model_fn(model_dir):
    time.sleep(2)
    return None

''' + ECHO_FUNCTIONS


def test_an_endpoint_being_created_shows_its_deployment_and_cannot_be_deleted_until_done(
        local_cloud: LocalCloud) -> None:
    # DeleteEndpoint on a Creating endpoint is a ValidationException on the service (one waits for
    # InService or Failed, then deletes); so is it while an update runs.
    uri = local_cloud.add_test_image("slow", {"inference.py": SLOW_HANDLER})
    sm = local_cloud.client("sagemaker")
    local_cloud.create_endpoint("slow", uri, wait=False)
    # While it is created, the deployment in progress shows in PendingDeploymentSummary ("only returned
    # when the endpoint is creating or updating with a new endpoint configuration", botocore's model).
    creating_view = sm.describe_endpoint(EndpointName="slow")
    assert creating_view["EndpointStatus"] == "Creating"
    pending = creating_view["PendingDeploymentSummary"]
    assert pending["EndpointConfigName"] == "slow-c1"
    assert [(v["VariantName"], v["DesiredInstanceCount"], v["InstanceType"], v["VariantStatus"][0]["Status"])
            for v in pending["ProductionVariants"]] == [("AllTraffic", 1, "ml.m5.large", "Creating")]
    arn = f"arn:aws:sagemaker:us-east-1:{LOCAL_ACCOUNT}:endpoint/slow"
    with pytest.raises(ClientError) as creating:
        sm.delete_endpoint(EndpointName="slow")
    assert _error(creating) == ("ValidationException", f'Cannot update in-progress endpoint "{arn}".')
    assert "PendingDeploymentSummary" not in local_cloud.wait_for("slow", "InService")
    sm.update_endpoint(EndpointName="slow", EndpointConfigName="slow-c1")
    with pytest.raises(ClientError) as updating:
        sm.delete_endpoint(EndpointName="slow")
    assert _error(updating)[0] == "ValidationException"
    assert sm.describe_endpoint(EndpointName="slow")["EndpointStatus"] == "Updating"  # the update carries on
    local_cloud.wait_for("slow", "InService")
    sm.delete_endpoint(EndpointName="slow")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="slow", WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def test_an_update_can_retain_the_variant_properties_set_since_the_config(local_cloud: LocalCloud, echo_uri: str) -> None:
    # UpdateEndpoint's RetainAllVariantProperties keeps the variants' current instance counts and weights
    # (the new config's InitialInstanceCount does not shrink a fleet scaled since); the properties named in
    # ExcludeRetainedVariantProperties come from the new config again.
    sm = local_cloud.client("sagemaker")
    local_cloud.create_endpoint("retain", echo_uri)
    sm.update_endpoint_weights_and_capacities(EndpointName="retain", DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredInstanceCount": 2, "DesiredWeight": 2.0}])
    # While it is Updating, the requested values are the Desired ones (the ProductionVariantSummary's
    # DesiredWeight/DesiredInstanceCount: "as specified in the UpdateEndpointWeightsAndCapacities
    # request"); the Current ones follow when the update is done.
    scaling = sm.describe_endpoint(EndpointName="retain")
    variant = scaling["ProductionVariants"][0]
    assert scaling["EndpointStatus"] == "Updating"
    assert (variant["CurrentWeight"], variant["DesiredWeight"]) == (1.0, 2.0)
    assert (variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]) == (1, 2)
    variant = local_cloud.wait_for("retain", "InService")["ProductionVariants"][0]
    assert (variant["CurrentWeight"], variant["DesiredWeight"]) == (2.0, 2.0)
    assert (variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]) == (2, 2)
    local_cloud.create_model("retain-m2", echo_uri)
    local_cloud.create_config("retain-c2", {"AllTraffic": "retain-m2"})  # 1 instance, weight 1

    def fleet() -> tuple[int, int, float]:
        variant = local_cloud.wait_for("retain", "InService")["ProductionVariants"][0]
        return variant["CurrentInstanceCount"], variant["DesiredInstanceCount"], variant["CurrentWeight"]

    sm.update_endpoint(EndpointName="retain", EndpointConfigName="retain-c2", RetainAllVariantProperties=True)
    assert sm.describe_endpoint(EndpointName="retain")["EndpointStatus"] == "Updating"
    assert fleet() == (2, 2, 2.0)
    sm.update_endpoint(EndpointName="retain", EndpointConfigName="retain-c1", RetainAllVariantProperties=True,
                       ExcludeRetainedVariantProperties=[{"VariantPropertyType": "DesiredInstanceCount"}])
    assert sm.describe_endpoint(EndpointName="retain")["EndpointStatus"] == "Updating"
    assert fleet() == (1, 1, 2.0)
    sm.update_endpoint(EndpointName="retain", EndpointConfigName="retain-c2")  # the default: the config's values
    assert sm.describe_endpoint(EndpointName="retain")["EndpointStatus"] == "Updating"
    assert fleet() == (1, 1, 1.0)


# A model only one instance may load at a time (the marker file stands for a licence, a GPU, a port...):
# a second instance of it fails its ping health check.
ONCE_HANDLER = '''
import os

def model_fn(model_dir):
    marker = os.environ["ONCE_MARKER"]
    if os.path.exists(marker):
        raise SystemExit("a second instance cannot load this model on purpose")
    open(marker, "w").close()
    return None

''' + ECHO_FUNCTIONS


def test_a_scale_up_that_fails_rolls_back_to_the_previous_counts_and_weights(
        local_cloud: LocalCloud, tmp_path: Path) -> None:
    # DescribeEndpoint's EndpointStatus: RollingBack is an endpoint that "fails to scale up or down or change
    # its variant weight and is in the process of rolling back to its previous configuration. Once the
    # rollback completes, endpoint returns to an InService status."
    uri = local_cloud.add_test_image("once", {"inference.py": ONCE_HANDLER})
    sm = local_cloud.client("sagemaker")
    local_cloud.create_model("once-m1", uri, environment={"ONCE_MARKER": str(tmp_path / "loaded")})
    local_cloud.create_config("once-c1", {"AllTraffic": "once-m1"})
    sm.create_endpoint(EndpointName="once", EndpointConfigName="once-c1")
    local_cloud.wait_for("once", "InService")
    sm.update_endpoint_weights_and_capacities(EndpointName="once", DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredInstanceCount": 2, "DesiredWeight": 3.0}])
    seen: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        described = sm.describe_endpoint(EndpointName="once")
        if not seen or seen[-1] != described["EndpointStatus"]:
            seen.append(described["EndpointStatus"])
        if described["EndpointStatus"] == "InService":
            break
        time.sleep(0.05)
    assert seen[:1] == ["Updating"] and "RollingBack" in seen and seen[-1] == "InService", seen
    assert "a second instance cannot load this model on purpose" in described["FailureReason"]
    variant = described["ProductionVariants"][0]
    assert (variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]) == (1, 1)
    assert (variant["CurrentWeight"], variant["DesiredWeight"]) == (1.0, 1.0)
    answer = local_cloud.client("sagemaker-runtime").invoke_endpoint(EndpointName="once", Body=b"still up")
    assert answer["Body"].read() == b"still up"
