"""The Jenkinsfile: a real Groovy parser accepts it (Debian's groovy, one JVM per test session), and the
declarative pipeline has the stages, reports, credentials and approval the pipeline needs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT

JENKINSFILE = PROJECT_ROOT / "Jenkinsfile"
PARSER = Path(__file__).with_name("parse_groovy.groovy")

pytestmark = pytest.mark.xdist_group("groovy")  # one JVM start for the whole module


def _java_home() -> str | None:
    """JAVA_HOME for Debian's groovy script, which insists on one (default-java may be absent)."""
    current = os.environ.get("JAVA_HOME")
    if current and Path(current, "bin", "java").exists():
        return current
    java = shutil.which("java")
    return str(Path(java).resolve().parent.parent) if java else None


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Parse the Jenkinsfile and a deliberately broken copy in one groovy run: file -> output lines."""
    groovy = shutil.which("groovy")
    if groovy is None:
        if os.environ.get("CI"):
            pytest.fail("groovy is not installed; `make system-deps` installs it")
        pytest.skip("groovy is not installed (make system-deps)")
    broken = tmp_path_factory.mktemp("groovy") / "Jenkinsfile.broken"
    text = JENKINSFILE.read_text()
    # Drop the closing brace of the pipeline block: a mistake a parser must catch.
    cut = text.index("\n    post {\n        failure")
    broken.write_text(text[:cut] + text[cut:].replace("\n}\n", "\n", 1))
    env = {**os.environ}
    home = _java_home()
    if home:
        env["JAVA_HOME"] = home
    proc = subprocess.run([groovy, str(PARSER), str(JENKINSFILE), str(broken)], capture_output=True, text=True,
                          env=env, timeout=300)
    out: dict[str, list[str]] = {"Jenkinsfile": [], "broken": [], "all": proc.stdout.splitlines() + proc.stderr.splitlines()}
    current = None
    for line in proc.stdout.splitlines():
        if line.startswith(("OK ", "ERROR ")):
            current = "broken" if line.endswith(".broken") else "Jenkinsfile"
        if current:
            out[current].append(line)
    return out


def test_groovy_parses_the_jenkinsfile(parsed: dict[str, list[str]]) -> None:
    assert parsed["Jenkinsfile"][:1] == [f"OK {JENKINSFILE}"], "\n".join(parsed["all"])


def test_groovy_rejects_a_broken_copy(parsed: dict[str, list[str]]) -> None:
    assert parsed["broken"][0].startswith("ERROR "), "\n".join(parsed["all"])
    assert any(re.search(r"Jenkinsfile\.broken:\d+:\d+: ", line) for line in parsed["broken"][1:])


# -- declarative structure (cheap checks in Python) --------------------------------------------------

TEXT = JENKINSFILE.read_text()
STAGES = re.findall(r"^\s*stage\('([^']+)'\)", TEXT, flags=re.MULTILINE)


def _stage_body(name: str) -> str:
    start = TEXT.index(f"stage('{name}')")
    following = [TEXT.index(f"stage('{n}')") for n in STAGES if TEXT.index(f"stage('{n}')") > start]
    return TEXT[start:min(following) if following else len(TEXT)]


def test_the_stages_run_in_pipeline_order() -> None:
    assert STAGES == ["Changes", "Validate", "Build", "Deploy dev", "Test dev", "Deploy staging", "Test staging",
                      "Review prod", "Approve prod", "Prod"]
    assert TEXT.lstrip().startswith("//") and "pipeline {" in TEXT and "agent any" in TEXT


def test_changed_models_fan_out_from_the_cli_document() -> None:
    changes = _stage_body("Changes")
    assert "modelops ci changed --since \"$MODELOPS_BASE\" --output json" in changes
    assert "readJSON(text: out)" in changes
    assert "parallel branches" in TEXT and "for (Map m in models)" in TEXT


def test_validate_publishes_junit_and_sarif_and_archives_reports() -> None:
    body = _stage_body("Validate")
    assert "--junit \"$REPORTS/validate.xml\"" in body and "--sarif \"$REPORTS/validate.sarif\"" in body
    assert "modelops ci pr --base" in body  # pull requests get the PR check
    assert "junit(testResults: 'reports/validate.xml'" in body
    assert "recordIssues(" in body and "sarif(pattern: 'reports/validate.sarif'" in body
    assert "archiveArtifacts(" in body
    assert "archiveArtifacts(artifacts: 'reports/**'" in TEXT.split("\n    post {\n        failure", 1)[1]


def test_prod_needs_an_input_whose_submitter_is_the_approver() -> None:
    body = _stage_body("Approve prod")
    assert "input {" in body and "submitterParameter 'APPROVER'" in body and "submitter " in body
    assert 'withEnv(["MODELOPS_CI_USER=${env.APPROVER}"])' in body
    # Every other stage acts for whoever started the build, as Jenkins' own CI user.
    assert "MODELOPS_CI_SYSTEM = 'jenkins'" in TEXT and "env.MODELOPS_CI_USER = startedBy()" in _stage_body("Changes")
    assert "sh 'modelops approve \"$RELEASE\" --env prod'" in body
    # Right above the prompt, the log shows what it lets in (the answer diffs), recording nothing.
    assert "sh 'modelops approve \"$RELEASE\" --env prod --show'" in _stage_body("Review prod")


def test_prod_deploys_wave_by_wave_from_environments_yaml() -> None:
    body = _stage_body("Prod")
    assert "index < prod.waves.size()" in body and 'stage("Prod wave ${index + 1}: ${wave.join(\', \')}")' in body
    assert "--env prod ' +\n" in body and "'--region \"$REGION\"" in body
    # Regions are never spelled out here: they come from pipelines/environments.yaml.
    for region in ("us-east-1", "eu-west-1", "ap-southeast-2"):
        assert region not in TEXT
    # A failed wave: let the wave's other regions finish, no rollback of Jenkins' own; the build fails.
    assert "branches.failFast = false" in body
    assert "rollback" not in re.sub(r"//.*", "", TEXT)


def test_aws_credentials_come_from_the_credential_store() -> None:
    assert "withCredentials([[$class: 'AmazonWebServicesCredentialsBinding'" in TEXT
    assert 'credentialsId: "modelops-aws-${target.name}"' in TEXT
    assert "AWS_SECRET_ACCESS_KEY'" in TEXT and "AKIA" not in TEXT


def test_every_shell_step_runs_the_modelops_cli() -> None:
    scripts = re.findall(r"sh\s*\(?\s*(?:returnStdout: true,\s*script:\s*)?'''(.*?)'''|sh\s*\(?\s*(?:returnStdout: true,\s*script:\s*)?'([^']*)'",
                         TEXT, flags=re.DOTALL)
    commands = [a or b for a, b in scripts]
    helper = re.findall(r"modelops\(model, [^,]+, '([^']*)'", TEXT)
    assert len(commands) >= 5 and len(helper) >= 4
    for command in commands + helper:
        assert command.strip().startswith(("modelops ", "mkdir -p")), command
    # Values travel as environment variables, never interpolated into a shell script.
    assert not re.search(r'sh\s*\(?\s*"', TEXT)


def test_the_fields_it_reads_are_in_the_ci_changed_document(repo: Path) -> None:
    from tests.helpers import run_cli, write

    write(repo / "models/iris/code/extra.py", "X = 1\n")
    doc = run_cli("ci", "changed", "--since", "HEAD", "--output", "json", cwd=repo).json()
    assert "models" in doc and "environments" in doc and "changedDoc.models" in TEXT
    model_keys, env_keys = set(doc["models"][0]), set(doc["environments"][0])
    used_on_models = set(re.findall(r"\bmodel\.(\w+)", TEXT))
    used_on_envs = set(re.findall(r"\b(?:target|prod|found)\.(\w+)", TEXT))
    used_either = set(re.findall(r"\bit\.(\w+)", TEXT))
    assert used_on_models and used_on_envs
    assert used_on_models <= model_keys, used_on_models - model_keys
    assert used_on_envs <= env_keys, used_on_envs - env_keys
    assert used_either <= model_keys | env_keys
