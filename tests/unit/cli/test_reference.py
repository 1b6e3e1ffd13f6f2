"""docs/configuration.md is what hack/gen_config_docs.py generates from the parser."""

from __future__ import annotations

from pathlib import Path

from cli import main as cli
from cli import reference
from cli.flags import Flag, command_parser, declared_flags

DOC = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"


def test_the_reference_is_up_to_date() -> None:
    assert DOC.read_text() == reference.render(cli.build_parser()), (
        "docs/configuration.md is stale: run `python hack/gen_config_docs.py`"
    )


def test_every_flag_and_variable_of_every_command_is_in_its_section() -> None:
    parser = cli.build_parser()
    text = reference.render(parser)
    shared = text.split("## Global flags (every command)", 1)[1].split("\n## ", 1)[0]
    for action in declared_flags(parser):
        assert f"`{action.flag.option}`" in shared, action.flag.option
    for command in reference.COMMANDS:
        own = text.split(f"## `{command}`", 1)[1].split("\n## ", 1)[0]
        for action in declared_flags(command_parser(parser, command)):
            flag: Flag = action.flag
            assert f"`{flag.option}`" in own + shared, (command, flag.option)
            for variable in flag.env_vars:
                assert f"`{variable}`" in text, (command, variable)


def test_every_command_is_in_it() -> None:
    parser = cli.build_parser()
    groups = {"certs", "prune"}
    named = set(cli.subcommands(parser)) - groups
    for group in groups:
        named |= {f"{group} {action}" for action in cli.subcommands(cli.subcommands(parser)[group])}
    assert named == set(reference.COMMANDS)


def test_deprecated_names_are_listed_with_their_replacement() -> None:
    text = reference.render(cli.build_parser())
    assert "| `--metrics-bind` | `--metrics-bind-address` |" in text
    assert "| `--no-leader-election` | `--leader-elect=false` |" in text
    assert "| `REGISTRY_WEBHOOK_API_QPS` | `REGISTRY_WEBHOOK_KUBE_API_QPS` |" in text


def test_a_help_text_with_a_pipe_keeps_the_table_intact() -> None:
    assert reference.cell("a | b") == "a \\| b"
