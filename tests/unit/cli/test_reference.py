"""docs/configuration.md is what hack/gen_config_docs.py generates from the parser."""

from __future__ import annotations

from pathlib import Path

from cli import main as cli
from cli import reference
from kube.flags import Flag, declared_flags

DOC = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"


def test_the_reference_is_up_to_date() -> None:
    assert DOC.read_text() == reference.render(cli.build_parser()), (
        "docs/configuration.md is stale: run `python hack/gen_config_docs.py`"
    )


def test_every_flag_and_variable_of_serve_and_controller_is_in_it() -> None:
    parser = cli.build_parser()
    text = reference.render(parser)
    for command in ("serve", "controller"):
        own = text.split(f"## `{command}`", 1)[1].split("\n## ", 1)[0]
        shared = text.split("## Both `serve` and `controller`", 1)[1].split("\n## ", 1)[0]
        section = own + shared
        for action in declared_flags(cli.subcommands(parser)[command]):
            flag: Flag = action.flag
            assert f"`{flag.option}`" in section, (command, flag.option)
            for variable in flag.env_vars:
                assert f"`{variable}`" in text, (command, variable)


def test_deprecated_names_are_listed_with_their_replacement() -> None:
    text = reference.render(cli.build_parser())
    assert "| `--metrics-bind` | `--metrics-bind-address` |" in text
    assert "| `--no-leader-election` | `--leader-elect=false` |" in text
    assert "| `REGISTRY_WEBHOOK_API_QPS` | `REGISTRY_WEBHOOK_KUBE_API_QPS` |" in text


def test_a_help_text_with_a_pipe_keeps_the_table_intact() -> None:
    assert reference.cell("a | b") == "a \\| b"
