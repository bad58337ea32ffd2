"""Safe YAML with positions: what a config file may not do, and where values are."""

from __future__ import annotations

import pytest

from modelops.config.yamlsource import MAX_BYTES, MAX_NODES, YamlError, parse


def test_positions_of_values_and_keys_are_one_based() -> None:
    parsed = parse("a: 1\nb:\n  c: [x, y]\n  d: text\n", "f.yaml")
    assert parsed.data == {"a": 1, "b": {"c": ["x", "y"], "d": "text"}}
    pos = parsed.source.position(("b", "c", 1))
    assert (pos.line, pos.column) == (3, 10)
    assert str(parsed.source.position(("b", "d"), key=True)) == "f.yaml:4:3"
    # A missing key falls back to its nearest ancestor: the block mapping's key.
    assert str(parsed.source.position(("b", "nope"))) == "f.yaml:2:1"


def test_duplicate_keys_are_reported_at_the_second_one() -> None:
    parsed = parse("name: a\nteam: x\nname: b\n", "f.yaml")
    [problem] = parsed.problems
    assert problem.rule == "yaml.duplicate-key"
    assert (problem.line, problem.column) == (3, 1)
    assert "first at line 1" in problem.message


def test_billion_laughs_is_refused_without_expanding_it() -> None:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i, name in enumerate("bcdefghij"):
        prev = "abcdefghij"[i]
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    with pytest.raises(YamlError) as err:
        parse("\n".join(lines), "bomb.yaml")
    assert err.value.rule == "yaml.alias-bomb"
    assert str(MAX_NODES) in err.value.message


def test_a_file_over_the_size_limit_is_refused_before_parsing() -> None:
    with pytest.raises(YamlError) as err:
        parse(b"a: " + b"x" * (MAX_BYTES + 1), "big.yaml")
    assert err.value.rule == "yaml.too-large"


def test_non_utf8_bytes_are_located() -> None:
    with pytest.raises(YamlError) as err:
        parse(b"a: 1\nb: caf\xe9\n", "latin1.yaml")
    assert err.value.rule == "yaml.encoding"
    assert (err.value.line, err.value.column) == (2, 7)
    assert "0xe9" in err.value.message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a: [1, 2\n", "did not find expected"),
        ("a: 1\n---\nb: 2\n", "more than one YAML document"),
        ("a: !!python/object:os.system x\n", "unsupported YAML tag"),
        ("? [a, b]\n: 1\n", "mapping keys must be"),
        ("a: 1\n\tb: 2\n", "tab"),
    ],
)
def test_malformed_yaml_is_a_syntax_error_with_a_line(text: str, fragment: str) -> None:
    with pytest.raises(YamlError) as err:
        parse(text, "bad.yaml")
    assert err.value.rule == "yaml.syntax"
    assert fragment in err.value.message
    assert err.value.line is not None


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(YamlError) as err:
        parse("[" * 200 + "]" * 200, "deep.yaml")
    assert err.value.rule == "yaml.too-deep"


def test_scalars_follow_the_yaml_core_schema_and_timestamps_stay_text() -> None:
    parsed = parse("i: 0x1f\nf: 1.5\nb: yes\nn: ~\nt: 2024-01-02\ns: '010'\n", "f.yaml")
    assert parsed.data == {"i": 31, "f": 1.5, "b": True, "n": None, "t": "2024-01-02", "s": "010"}


MERGED = """\
defaults: &fast
  strategy: all_at_once
  wait: 0
  timeout: 600
more: &more
  alarms: {p99: 1000}
  wait: 99
staging:
  <<: *fast
  wait: 5
prod:
  <<: [*more, *fast]
  strategy: canary
"""


def test_merge_keys_merge_with_the_mappings_own_keys_winning_and_keep_their_lines() -> None:
    parsed = parse(MERGED, "envs.yaml")
    assert parsed.problems == ()
    assert parsed.data["staging"] == {"strategy": "all_at_once", "wait": 5, "timeout": 600}
    # With a list, the first mapping listed wins over later ones; own keys win over both.
    assert parsed.data["prod"] == {"alarms": {"p99": 1000}, "wait": 99, "strategy": "canary", "timeout": 600}
    assert parsed.source.position(("staging", "wait")).line == 10  # the override's own line
    assert parsed.source.position(("staging", "timeout")).line == 4  # where the merged value is written
    assert parsed.source.position(("staging",), key=True).line == 8


def test_a_merge_of_something_not_a_mapping_is_a_located_syntax_error() -> None:
    with pytest.raises(YamlError) as err:
        parse("base: &b [1, 2]\nx:\n  <<: *b\n", "f.yaml")
    assert err.value.rule == "yaml.syntax" and "merge key (<<)" in str(err.value)
    assert err.value.line == 1


def test_a_key_written_twice_is_still_a_duplicate_next_to_a_merge() -> None:
    parsed = parse("base: &b {a: 1}\nx:\n  <<: *b\n  c: 1\n  c: 2\n", "f.yaml")
    [problem] = parsed.problems
    assert problem.rule == "yaml.duplicate-key" and problem.line == 5
