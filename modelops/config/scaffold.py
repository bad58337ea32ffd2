"""``modelops init NAME``: a new model folder that validates clean."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from modelops.config.workspace import MODELS_DIR, Workspace
from modelops.errors import InputError

BAD_NAME = "'{name}' is not a valid model name: use lower case letters, digits and dashes (at most 40), starting with a letter"
BAD_TEAM = "--team must name the owning team (1 to 128 characters, one line)"
BAD_DESCRIPTION = "--description must be one line of at most 2048 characters"
EXISTS = "{folder} already exists"
EXISTS_HINT = "pick another name, or edit the existing model"
_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")

#: template file -> path in the model folder
_FILES = {
    "model.yaml.j2": "model.yaml",
    "inference.py.tmpl": "code/inference.py",
    "requirements.txt": "code/requirements.txt",
    "cases.yaml.j2": "tests/cases.yaml",
}


@dataclass(frozen=True)
class InitResult:
    folder: str  # repo-relative
    files: tuple[str, ...]  # repo-relative


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def init_model(workspace: Workspace, name: str, *, team: str = "my-team", description: str = "") -> InitResult:
    """Write ``models/<name>/`` from the templates; refuses a bad name or an existing folder."""
    if not _NAME.match(name):
        raise InputError(BAD_NAME.format(name=name))
    # What metadata.team and .description accept (model.schema.json), so the folder validates clean.
    if not team.strip() or len(team) > 128 or "\n" in team:
        raise InputError(BAD_TEAM)
    if len(description) > 2048 or "\n" in description:
        raise InputError(BAD_DESCRIPTION)
    folder = f"{MODELS_DIR}/{name}"
    target = workspace.root / folder
    if target.exists():
        raise InputError(EXISTS.format(folder=folder), hint=EXISTS_HINT)
    values = {"name": name, "team": _quote(team), "description": _quote(description or f"The {name} model.")}
    written = []
    templates = resources.files("modelops.config").joinpath("templates")
    for template, rel in _FILES.items():
        text = templates.joinpath(template).read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(f"{folder}/{rel}")
    return InitResult(folder, tuple(written))
