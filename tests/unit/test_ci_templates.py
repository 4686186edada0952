"""The CI templates in deploy/ci are valid YAML and use chaoslab's CLI as documented."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from chaoslab.cli.main import build_parser

CI = Path(__file__).resolve().parents[2] / "deploy" / "ci"


def _commands(node: object) -> list[str]:
    if isinstance(node, str):
        return [" ".join(node.split())] if node.lstrip().startswith("chaoslab ") else []
    if isinstance(node, dict):
        return [c for v in node.values() for c in _commands(v)]
    if isinstance(node, list):
        return [c for v in node for c in _commands(v)]
    return []


@pytest.mark.parametrize("template", sorted(CI.glob("*.yml")), ids=lambda p: p.name)
def test_template_commands_parse_with_chaoslab_cli(template: Path) -> None:
    commands = _commands(yaml.safe_load(template.read_text()))
    assert any(c.startswith("chaoslab run ") for c in commands)
    parser = build_parser()
    for command in commands:
        args = parser.parse_args(shlex.split(command)[1:])
        assert callable(args.handler)
        if args.command == "run":
            assert args.yes, f"{template.name}: a CI run needs --yes"
            assert args.junit, f"{template.name}: a CI run needs --junit"
