"""`modelops validate`, `schema` and `init` as a user runs them: exit codes, output formats, reports,
bad input, git refs, start-up cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from modelops.config import workspace as ws_module
from modelops.config.yamlsource import MAX_BYTES
from tests.helpers import commit_all, git, init_repo, run_cli, write

MODEL = "models/iris/model.yaml"


def _reports(repo: Path, tmp_path: Path, *args: str) -> tuple[object, dict, ET.Element, str]:
    junit, sarif, md = tmp_path / "r.xml", tmp_path / "r.sarif", tmp_path / "r.md"
    result = run_cli("validate", *args, "--output", "json", "--junit", junit, "--sarif", sarif, "--markdown", md,
                     cwd=repo)
    return result, json.loads(sarif.read_text()), ET.parse(junit).getroot(), md.read_text()


def test_clean_repo_exits_zero_with_a_table_on_stderr(repo: Path) -> None:
    result = run_cli("validate", cwd=repo)
    assert result.exit_code == 0, result
    assert result.stdout == ""
    assert "modelops validate: ok: 3 model(s)" in result.stderr
    pipelines = run_cli("validate", "pipelines/", cwd=repo)  # no model: it says what it checked
    assert pipelines.exit_code == 0, pipelines
    assert "modelops validate: ok: no models (3 pipeline file(s) checked)" in pipelines.stderr  # environments, policy, access


def test_findings_exit_one_and_appear_in_every_format(repo: Path, tmp_path: Path) -> None:
    path = repo / MODEL
    path.write_text(path.read_text().replace("instance_type: ml.m5.large", "instance_type: ml.m5.huge"))
    result, sarif, junit, md = _reports(repo, tmp_path)

    assert result.exit_code == 1, result
    doc = result.json()
    assert set(doc) == {"models", "findings", "summary"}
    [finding] = doc["findings"]
    assert set(finding) >= {"rule", "severity", "file", "line", "column", "path", "message", "hint"}
    assert finding["rule"] == "capacity.unknown-instance-type"
    assert finding["path"] == "$.spec.resources.instance_type"
    assert doc["summary"]["error"] == 1 and doc["summary"]["exit_status"] == 1

    [run] = sarif["runs"]
    assert sarif["version"] == "2.1.0"
    [res] = run["results"]
    assert res["ruleId"] == "capacity.unknown-instance-type" and res["level"] == "error"
    region = res["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": finding["line"], "startColumn": finding["column"]}
    assert run["tool"]["driver"]["rules"][res["ruleIndex"]]["id"] == res["ruleId"]

    failures = junit.findall(".//testcase/failure")
    assert len(failures) == 1 and "ml.m5.huge" in (failures[0].text or "")
    assert {c.get("name") for c in junit.findall(".//testcase")} >= {"iris", "minilm-embeddings", "llm-chat"}

    assert md.startswith("### modelops validate: ❌ failed")
    assert f"`{MODEL}:{finding['line']}:{finding['column']}`" in md


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        (b"apiVersion: modelops/v1\nkind: [Model\n", "yaml.syntax"),
        (b"apiVersion: modelops/v1\nkind: Model\nmetadata: {name: caf\xe9}\n", "yaml.encoding"),
        (b"- a\n- list\n", "yaml.not-a-mapping"),
        (b"just a scalar\n", "yaml.not-a-mapping"),
        (b'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n'
         + b"".join(b"%c: &%c [" % (98 + i, 98 + i) + b",".join([b"*%c" % (97 + i)] * 10) + b"]\n" for i in range(7)),
         "yaml.alias-bomb"),
    ],
    ids=["malformed", "non-utf8", "list", "scalar", "alias-bomb"],
)
def test_unreadable_config_is_a_located_finding_and_exit_two(repo: Path, tmp_path: Path, content: bytes,
                                                             rule: str) -> None:
    (repo / MODEL).write_bytes(content)
    result, sarif, junit, md = _reports(repo, tmp_path, "models/iris")

    assert result.exit_code == 2, result
    assert "Traceback" not in result.stderr
    [finding] = [f for f in result.json()["findings"] if f["file"] == MODEL]
    assert finding["rule"] == rule
    assert sarif["runs"][0]["results"][0]["ruleId"] == rule
    assert rule in (junit.find(".//failure").text or "")  # type: ignore[union-attr]
    assert f"`{rule}`" in md


def test_a_50_mb_config_is_refused_without_reading_it(repo: Path) -> None:
    with open(repo / MODEL, "wb") as fh:
        fh.truncate(50 * 1024 * 1024)
    result = run_cli("validate", "models/iris", "--output", "json", cwd=repo)
    assert result.exit_code == 2, result
    [finding] = [f for f in result.json()["findings"] if f["file"] == MODEL]
    assert finding["rule"] == "yaml.too-large" and str(MAX_BYTES) in finding["message"]


def test_bad_usage_is_one_line_and_exit_two(repo: Path, tmp_path: Path) -> None:
    cases = [
        (("validate", "--ref", "nope"), ws_module.BAD_REF.format(ref="nope", path=repo.resolve())),
        (("validate", "models/absent"), "models/absent does not exist"),
        (("validate", "--changed-since", "nope"), "git ref 'nope' does not exist"),
    ]
    for args, message in cases:
        result = run_cli(*args, cwd=repo)
        assert result.exit_code == 2, result
        assert result.stderr.startswith("error: " + message), result
        assert "Traceback" not in result.stderr
    plain = tmp_path / "plain"
    (plain / "pipelines").mkdir(parents=True)
    result = run_cli("validate", "--ref", "HEAD", cwd=plain)
    assert result.exit_code == 2 and "is not a git repository" in result.stderr, result
    report = tmp_path / "report.xml"
    result = run_cli("validate", "--ref", "nope", "--junit", report, cwd=repo)
    assert result.exit_code == 2 and not report.exists(), "nothing is written on bad usage"


def test_ref_validates_committed_configs_without_checkout(repo: Path) -> None:
    good = git(repo, "rev-parse", "HEAD")
    path = repo / MODEL
    path.write_text(path.read_text().replace("network_isolation: true", "network_isolation: false"))
    commit_all(repo, "turn off isolation")
    assert run_cli("validate", "--ref", good, cwd=repo).exit_code == 0
    bad = run_cli("validate", "--ref", "HEAD", "--output", "json", cwd=repo)
    assert bad.exit_code == 1
    assert {f["rule"] for f in bad.json()["findings"]} == {"security.network-isolation"}
    assert bad.json()["summary"]["commit"] == git(repo, "rev-parse", "HEAD")
    assert git(repo, "status", "--porcelain") == ""


def test_changed_since_selects_the_models_a_pull_request_touches(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "pr")
    write(repo / "models/minilm-embeddings/README.md", "notes\n")
    commit_all(repo, "docs")
    result = run_cli("validate", "--changed-since", "main", "--output", "json", cwd=repo)
    assert result.exit_code == 0, result
    assert [m["name"] for m in result.json()["models"]] == ["minilm-embeddings"]
    write(repo / "pipelines/environments.yaml", (repo / "pipelines/environments.yaml").read_text() + "\n")
    result = run_cli("validate", "--changed-since", "main", "--output", "json", cwd=repo)
    assert len(result.json()["models"]) == 3


def test_list_rules(repo: Path) -> None:
    result = run_cli("validate", "--list-rules", "--output", "json", cwd=repo)
    rules = {r["rule"]: r for r in result.json()["rules"]}
    assert rules["security.kms-required"]["environments"] == ["staging", "prod"]
    assert rules["capacity.tensor-parallel"]["severity"] == "error"
    assert rules["build.hadolint"]["severity"] == "warning"  # build's checker, plugged in when a command runs
    # The table (80 columns when not a terminal) shows every id whole: policy.yaml names rules by it.
    table = run_cli("validate", "--list-rules", cwd=repo)
    assert table.exit_code == 0, table
    shown = {line.split()[0] for line in table.stderr.splitlines() if line.strip()}
    assert set(rules) <= shown, sorted(set(rules) - shown)


def test_policy_can_fail_on_warnings(repo: Path) -> None:
    path = repo / "models/iris/model.yaml"
    path.write_text(path.read_text().replace("name: iris", "name: iris-classifier"))
    assert run_cli("validate", cwd=repo).exit_code == 0  # config.name-mismatch is a warning
    policy = repo / "pipelines/policy.yaml"
    policy.write_text(policy.read_text().replace("fail_on: error", "fail_on: warning"))
    result = run_cli("validate", "--output", "json", cwd=repo)
    assert result.exit_code == 1
    assert [f["rule"] for f in result.json()["findings"]] == ["config.name-mismatch"]


def test_init_scaffolds_a_model_that_validates_clean(repo: Path) -> None:
    result = run_cli("init", "fraud-score", "--team", "risk", cwd=repo)
    assert result.exit_code == 0, result
    assert (repo / "models/fraud-score/code/inference.py").is_file()
    check = run_cli("validate", "models/fraud-score", "--output", "json", cwd=repo)
    assert check.exit_code == 0, check
    assert check.json()["models"][0]["name"] == "fraud-score"
    again = run_cli("init", "fraud-score", cwd=repo)
    assert again.exit_code == 2 and "already exists" in again.stderr
    assert run_cli("init", "Bad_Name", cwd=repo).exit_code == 2
    # A team the schema would refuse is refused here (an empty one silently became "my-team").
    for team in ("", "  ", "x" * 129, "two\nlines"):
        refused = run_cli("init", "other-model", "--team", team, cwd=repo)
        assert refused.exit_code == 2 and "--team must name the owning team" in refused.stderr, refused
    assert not (repo / "models/other-model").exists()


def test_schema_command_prints_the_schema_check_jsonschema_agrees_with(repo: Path, tmp_path: Path) -> None:
    schema_file = tmp_path / "model.schema.json"
    result = run_cli("schema", "model")
    assert result.exit_code == 0
    schema_file.write_text(result.stdout)
    assert json.loads(result.stdout)["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    files = [str(p) for p in sorted((repo / "models").glob("*/model.yaml"))]
    proc = subprocess.run([str(Path(sys.executable).parent / "check-jsonschema"), "--schemafile", str(schema_file),
                           *files], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_validate_imports_no_cloud_or_load_libraries_and_a_warm_rerun_not_bandit(repo: Path, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from modelops.cli.app import run\n"
        "status = run(['validate', 'models'])\n"
        "heavy = [m for m in ('boto3', 'botocore', 'sagemaker', 'locust', 'gevent', 'git', 'bandit',"
        " 'modelops.localcloud.server') if m in sys.modules]\n"
        "sys.stderr.write(f'STATUS={status} HEAVY=' + ','.join(heavy))\n"
    )
    env = {"MODELOPS_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    first = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True)
    assert "STATUS=0 HEAVY=bandit" in first.stderr, first.stderr  # cold cache: bandit scans
    second = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True)
    assert second.stderr.rstrip().endswith("STATUS=0 HEAVY="), second.stderr  # warm cache: no bandit, no git


def test_a_bandit_finding_is_cached_by_content(repo: Path) -> None:
    code = repo / "models/iris/code/inference.py"
    code.write_text(code.read_text() + "\n\ndef debug(expr):\n    return eval(expr)\n")
    first = run_cli("validate", "models/iris", "--output", "json", cwd=repo)
    second = run_cli("validate", "models/iris", "--output", "json", cwd=repo)
    assert first.exit_code == second.exit_code == 1
    assert first.json()["findings"] == second.json()["findings"]
    [finding] = first.json()["findings"]
    assert finding["file"] == "models/iris/code/inference.py" and "B307" in finding["message"]
    assert finding["line"] == code.read_text().splitlines().index("    return eval(expr)") + 1


def test_duplicate_model_names(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    import shutil

    shutil.copytree(repo / "models/iris", repo / "models/iris-copy")
    result = run_cli("validate", "--output", "json", cwd=repo)
    rules = {f["rule"] for f in result.json()["findings"]}
    assert "config.duplicate-name" in rules and result.exit_code == 1


def test_forked_validation_matches_a_single_process(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from modelops.policy import validation as validate_module

    for i in range(5):
        shutil.copytree(repo / "models/iris", repo / f"models/iris-{i}")
        path = repo / f"models/iris-{i}/model.yaml"
        text = path.read_text().replace("name: iris\n", f"name: iris-{i}\n")
        if i == 4:  # a duplicate of a model that another process checks, and a finding of its own
            text = text.replace("name: iris-4\n", "name: iris-0\n").replace("ml.m5.large", "ml.m5.lrge")
        path.write_text(text)
    single = run_cli("validate", "--output", "json", cwd=repo)
    monkeypatch.setattr(validate_module, "MODELS_PER_PROCESS", 2)
    monkeypatch.setattr(validate_module, "_cpus", lambda: 4)
    forked = run_cli("validate", "--output", "json", cwd=repo)
    assert forked.exit_code == single.exit_code == 1
    assert forked.json() == single.json()
    rules = sorted(f["rule"] for f in forked.json()["findings"])
    assert rules == ["capacity.unknown-instance-type", "config.duplicate-name", "config.name-mismatch"]


def test_a_config_symlinked_out_of_the_repository_is_refused(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text((repo / MODEL).read_text())
    (repo / MODEL).unlink()
    (repo / MODEL).symlink_to(outside)
    result = run_cli("validate", "models/iris", "--output", "json", cwd=repo)
    assert result.exit_code == 1, result
    [finding] = [f for f in result.json()["findings"] if f["file"] == MODEL]
    assert finding["rule"] == "security.path-escape" and "leads out of the repository" in finding["message"]


def test_a_model_yaml_that_is_no_readable_file_is_reported_not_skipped(repo: Path) -> None:
    # Each was silently left out ("ok: 3 model(s)", exit 0), and a dangling policy.yaml link meant the
    # default policy: a pull-request check must not pass over what it cannot read.
    for name in ("loop", "dangling", "fifo"):
        (repo / "models" / name).mkdir()
    (repo / "models/loop/model.yaml").symlink_to("model.yaml")
    (repo / "models/dangling/model.yaml").symlink_to("nowhere.yaml")
    os.mkfifo(repo / "models/fifo/model.yaml")
    (repo / "pipelines/policy.yaml").unlink()
    (repo / "pipelines/policy.yaml").symlink_to("gone.yaml")
    result = run_cli("validate", "--output", "json", cwd=repo)
    assert result.exit_code == 2, result
    found = {f["file"]: f for f in result.json()["findings"] if f["rule"] == "config.unreadable"}
    assert "models/loop/model.yaml" in found and "levels of symbolic links" in found["models/loop/model.yaml"]["message"]
    assert found["models/dangling/model.yaml"]["message"] == (
        "models/dangling/model.yaml is a symlink to nowhere.yaml, which does not exist")
    assert found["models/fifo/model.yaml"]["message"] == "models/fifo/model.yaml is not a regular file"
    assert "pipelines/policy.yaml" in found, result


def test_a_secret_is_reported_even_when_the_schema_fails(repo: Path) -> None:
    path = repo / MODEL
    text = path.read_text().replace('SAGEMAKER_CONTAINER_LOG_LEVEL: "20"', 'API_TOKEN: "tok-9f8e7d6c5b4a"')
    path.write_text(text.replace("instance_type: ml.m5.large", "instance_typ: ml.m5.large"))
    result = run_cli("validate", "models/iris", "--output", "json", cwd=repo)
    rules = [f["rule"] for f in result.json()["findings"]]
    assert rules == ["security.secret-in-env", "schema.unknown-key"], result  # no duplicate "missing" complaint
    assert "tok-9f8e7d6c5b4a" not in result.stdout + result.stderr


def test_prod_can_require_signed_artifacts_as_deploy_verifies_them(repo: Path, tmp_path: Path) -> None:
    from modelops.build.artifacts import NO_PUBLIC_KEY, SIGNATURE_REQUIRED
    from tests.build.conftest import ec_key_pair

    policy = repo / "pipelines/policy.yaml"
    policy.write_text(policy.read_text().replace("required_in: []", "required_in: [prod]"))
    result = run_cli("validate", "models/iris", "--output", "json", cwd=repo)
    assert result.exit_code == 1
    [finding] = result.json()["findings"]
    assert finding["rule"] == "security.artifact-signature"
    assert finding["message"] == SIGNATURE_REQUIRED.format(model="iris", environment="prod",
                                                           file="models/iris/artifacts.sig")
    private, public = ec_key_pair(tmp_path)
    key = repo / "pipelines/artifact-signing.pub"
    key.write_bytes(public.read_bytes())
    signed = run_cli("build", "iris", "--context-only", tmp_path / "ctx", "--sign-key", private, cwd=repo)
    assert signed.exit_code == 0, signed
    assert run_cli("validate", "models/iris", cwd=repo).exit_code == 0
    key.unlink()
    [finding] = run_cli("validate", "models/iris", "--output", "json", cwd=repo).json()["findings"]
    assert finding["message"] == NO_PUBLIC_KEY.format(file="pipelines/artifact-signing.pub",
                                                      signature="models/iris/artifacts.sig")
    key.write_bytes(public.read_bytes())
    # A signature over other artifacts is refused, as deploy refuses it (and found though cached).
    artifact = repo / "models/iris/artifacts/model.json"
    artifact.write_bytes(artifact.read_bytes() + b"\n")
    model = repo / MODEL
    import hashlib

    model.write_text(model.read_text().replace(
        "d1b75e902d14d45090d10ede85aee32af7f1ad2c54ddf4ebc17b46916ed01e35", hashlib.sha256(artifact.read_bytes()).hexdigest()))
    [finding] = run_cli("validate", "models/iris", "--output", "json", cwd=repo).json()["findings"]
    assert "the artifacts differ from the ones that were signed" in finding["message"]


@pytest.mark.parametrize(("cloud", "builder", "allowed"), [("local", "codebuild", "local"),
                                                           ("aws", "local", "docker, codebuild")])
def test_a_builder_that_cannot_feed_the_environments_cloud_is_a_located_finding(
        repo: Path, cloud: str, builder: str, allowed: str) -> None:
    envs = repo / "pipelines" / "environments.yaml"
    text = envs.read_text().replace("  dev:\n    cloud: local\n", f"  dev:\n    cloud: {cloud}\n", 1)
    envs.write_text(text.replace("    builder: local\n", f"    builder: {builder}\n", 1))
    result = run_cli("validate", "--output", "json", cwd=repo)
    assert result.exit_code == 1, result
    found = [f for f in result.json()["findings"] if f["path"] == "$.environments.dev.builder"]
    assert [f["message"] for f in found] == [f"environments.dev.builder: '{builder}' is not one of {allowed}"], result
    assert found[0]["file"] == "pipelines/environments.yaml" and found[0]["line"] > 1
