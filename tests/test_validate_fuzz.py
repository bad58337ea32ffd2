"""Property: mutating a valid config in any way never crashes validate; it yields findings or exit 2."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelops.errors import ModelopsError
from modelops.policy.validation import ValidateRequest, validate
from modelops.runtime import Runtime
from tests.helpers import PROJECT_ROOT

EXAMPLES = {f"models/{p.parent.name}/model.yaml": (p.read_bytes(), yaml.safe_load(p.read_text()))
            for p in sorted((PROJECT_ROOT / "models").glob("*/model.yaml"))}
EXAMPLES.update({f"pipelines/{p.name}": (p.read_bytes(), yaml.safe_load(p.read_text()))
                 for p in sorted((PROJECT_ROOT / "pipelines").glob("*.yaml"))})
PIPELINES = {p.name: p.read_bytes() for p in (PROJECT_ROOT / "pipelines").glob("*.yaml")}

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=False),
                    st.text(max_size=30), st.sampled_from(["ml.g5.12xlarge", "../../etc", "AKIA" + "A" * 16, "{region}"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=10), inner, max_size=3)),
                      max_leaves=6)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(EXAMPLES)))
    raw, doc = EXAMPLES[name]
    if draw(st.integers(0, 3)) == 0:  # byte-level damage: truncation, insertion
        cut = draw(st.integers(0, len(raw)))
        junk = draw(st.binary(max_size=8))
        return name, raw[:cut] + junk + raw[cut + draw(st.integers(0, 20)):]
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        if not path:
            continue
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["delete", "replace", "add"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = draw(values)
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(values)
    return name, yaml.safe_dump(doc, allow_unicode=True).encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_configs_never_crash_validate(case: tuple[str, bytes]) -> None:
    target, content = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for file, data in PIPELINES.items():
            (root / "pipelines").mkdir(exist_ok=True)
            (root / "pipelines" / file).write_bytes(data)
        for src in sorted((PROJECT_ROOT / "models").iterdir()):
            for path in src.rglob("*"):
                if path.is_file() and "artifacts" not in path.parts and "__pycache__" not in path.parts:
                    dest = root / "models" / src.name / path.relative_to(src)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(path.read_bytes())
        (root / target).write_bytes(content)
        runtime = Runtime(cwd=root, data_dir=root / ".data", environ={})
        try:
            result = validate(ValidateRequest(bandit=False), runtime)
        except ModelopsError:
            return  # a one-line user error is fine; anything else is a crash
        assert int(result.exit_status) in (0, 1, 2)
        for finding in result.findings:
            assert finding.location.file and finding.message
