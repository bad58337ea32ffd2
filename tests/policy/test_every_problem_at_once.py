"""validate reports every problem at once: a model.yaml that fails its schema is still checked by every
check whose inputs are intact, and no check runs on a value the schema refused."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import init_repo, run_cli, use_sagemaker_canary_in_prod

IRIS = "models/iris/model.yaml"


def _findings(repo: Path) -> list[dict]:
    result = run_cli("validate", "models/iris", "--no-bandit", "--output", "json", cwd=repo)
    assert result.exit_code == 1, result
    return sorted(result.json()["findings"], key=lambda f: f["line"])


def _edit(repo: Path, *pairs: tuple[str, str]) -> None:
    path = repo / IRIS
    text = path.read_text()
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(text)


def test_a_bad_framework_version_shows_beside_two_schema_errors(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    _edit(repo, ("  team: ml-platform\n", "  team: ml-platform\n  owner: someone\n"),
          ('framework_version: "1.2-1"', 'framework_version: "1.2-9"'),
          ("    instance_count: 1\n", "    instance_count: two\n"))

    found = _findings(repo)

    assert [(f["rule"], f["path"]) for f in found] == [
        ("schema.unknown-key", "$.metadata.owner"),
        ("config.framework-version", "$.spec.container.framework_version"),
        ("schema.invalid", "$.spec.resources.instance_count"),
    ]
    assert "did you mean '1.2-1'" in found[1]["message"]


def test_checks_of_the_broken_part_do_not_run_and_the_others_do(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    # prod's count is not a number: the rollout and autoscaling checks, which read it, must not guess it
    # (as 1: "a canary of 1 instance"); the path and security checks read other parts and still run.
    use_sagemaker_canary_in_prod(repo)  # a canary of 1 instance is refused there (the judged canary takes it)
    _edit(repo, ("      resources:\n        instance_count: 2\n", "      resources:\n        instance_count: [2]\n"),
          ("entry_point: code/inference.py", "entry_point: code/serve.py"),
          ("network_isolation: true", "network_isolation: false"))

    rules = [f["rule"] for f in _findings(repo)]

    assert sorted(rules) == ["config.missing-path", "schema.invalid", "security.network-isolation",
                             "security.network-isolation"]  # staging and prod


def test_a_misspelt_key_breaks_the_value_it_was_meant_to_set(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    # `instance_cont: 2` leaves prod's count at the base's 1, which prod's canary cannot use; that
    # "problem" is the typo's, so only the typo is reported.
    use_sagemaker_canary_in_prod(repo)  # a canary of 1 instance is refused there (the judged canary takes it)
    _edit(repo, ("      resources:\n        instance_count: 2\n", "      resources:\n        instance_cont: 2\n"))

    found = _findings(repo)

    assert [f["rule"] for f in found] == ["schema.unknown-key"]
    assert "did you mean 'instance_count'" in found[0]["message"]
