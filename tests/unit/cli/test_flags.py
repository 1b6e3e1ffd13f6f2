"""Flags with environment variables, one boolean parser, and deprecated names."""

from __future__ import annotations

import argparse

import pytest

from cli import flags
from cli.flags import Flag, FlagError


def parser_with(*declared: Flag) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="test")
    flags.add_flags(parser, declared)
    return parser


def parse(
    declared: list[Flag], *argv: str, env: dict[str, str] | None = None
) -> tuple[argparse.Namespace, list[str]]:
    namespace = parser_with(*declared).parse_args(list(argv))
    return namespace, flags.resolve(namespace, env or {})


SWITCH = Flag("switch", "a boolean", False, boolean=True, deprecated=("--old-switch", "--no-old"))
COUNT = Flag("count", "a number", 3, parse=int, deprecated=("--old-count",))
ITEMS = Flag("item", "repeatable", [], dest="items", repeatable=True, env=("ITEMS",))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("True", True),
        ("YES", True),
        ("1", True),
        (" yes ", True),
        ("false", False),
        ("FALSE", False),
        ("no", False),
        ("0", False),
    ],
)
def test_booleans_have_one_parser(text: str, value: bool) -> None:
    assert flags.parse_bool(text) is value


@pytest.mark.parametrize("text", ["on", "off", "", "2", "tru", "y", "n", "enabled"])
def test_anything_else_is_no_boolean(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected one of true, false, 1, 0"):
        flags.parse_bool(text)


@pytest.mark.parametrize(
    ("argv", "value"),
    [
        ((), False),
        (("--switch",), True),
        (("--switch=yes",), True),
        (("--switch", "1"), True),
        (("--switch=false",), False),
        (("--switch=no",), False),
    ],
)
def test_a_boolean_flag_alone_is_true_and_takes_a_word(argv: tuple[str, ...], value: bool) -> None:
    assert parse([SWITCH], *argv)[0].switch is value


def test_a_boolean_flag_refuses_other_words(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse([SWITCH], "--switch=on")
    assert exited.value.code == 2
    assert "argument --switch: expected one of true, false, 1, 0, yes, no; got 'on'" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(("text", "value"), [("yes", True), ("0", False), ("TRUE", True)])
def test_a_boolean_variable_uses_the_same_parser(text: str, value: bool) -> None:
    assert parse([SWITCH], env={"REGISTRY_WEBHOOK_SWITCH": text})[0].switch is value


def test_a_bad_variable_names_itself() -> None:
    with pytest.raises(FlagError, match="environment variable REGISTRY_WEBHOOK_SWITCH: expected"):
        parse([SWITCH], env={"REGISTRY_WEBHOOK_SWITCH": "on"})
    with pytest.raises(FlagError, match="REGISTRY_WEBHOOK_COUNT"):
        parse([COUNT], env={"REGISTRY_WEBHOOK_COUNT": "many"})


def test_the_flag_wins_over_the_variable_and_the_variable_over_the_default() -> None:
    env = {"REGISTRY_WEBHOOK_COUNT": "7"}
    assert parse([COUNT])[0].count == 3
    assert parse([COUNT], env=env)[0].count == 7
    assert parse([COUNT], "--count=9", env=env)[0].count == 9


def test_an_empty_variable_counts_as_unset() -> None:
    assert parse([COUNT], env={"REGISTRY_WEBHOOK_COUNT": " "})[0].count == 3


def test_a_repeatable_flag_collects_each_use_and_its_variable_is_a_list() -> None:
    assert parse([ITEMS], "--item=a", "--item", "b")[0].items == ["a", "b"]
    assert parse([ITEMS], env={"ITEMS": "a, b,,"})[0].items == ["a", "b"]
    assert parse([ITEMS])[0].items == []


def test_a_default_list_is_never_shared_between_parses() -> None:
    first, _ = parse([ITEMS])
    first.items.append("x")
    assert parse([ITEMS])[0].items == []


def test_a_deprecated_flag_sets_the_new_one_and_says_so() -> None:
    namespace, notices = parse([COUNT], "--old-count=5")
    assert namespace.count == 5
    assert notices == ["flag --old-count is deprecated: use --count"]


def test_a_deprecated_negation_sets_false() -> None:
    namespace, notices = parse([SWITCH], "--switch", "--no-old")
    assert namespace.switch is False
    assert notices == ["flag --no-old is deprecated: use --switch=false"]


def test_a_deprecated_variable_still_works_after_the_current_one() -> None:
    namespace, notices = parse([COUNT], env={"REGISTRY_WEBHOOK_OLD_COUNT": "6"})
    assert namespace.count == 6
    assert notices == [
        "environment variable REGISTRY_WEBHOOK_OLD_COUNT is deprecated: use REGISTRY_WEBHOOK_COUNT"
    ]
    both = {"REGISTRY_WEBHOOK_OLD_COUNT": "6", "REGISTRY_WEBHOOK_COUNT": "8"}
    assert parse([COUNT], env=both) == (argparse.Namespace(count=8), [])


def test_each_deprecated_name_is_reported_once() -> None:
    _, notices = parse([COUNT], "--old-count=1", "--old-count=2")
    assert notices == ["flag --old-count is deprecated: use --count"]


def test_deprecated_names_are_hidden_from_help() -> None:
    text = parser_with(SWITCH, COUNT).format_help()
    assert "--count" in text and "--switch" in text
    assert "--old-count" not in text and "--no-old" not in text


def test_help_shows_the_default_and_the_variables() -> None:
    namespace_flag = Flag("namespace", "where", "ns", env=("A_VAR", "B_VAR"))
    assert flags.help_text(namespace_flag) == "where (default ns; env A_VAR, B_VAR)"
    assert flags.help_text(SWITCH) == "a boolean (default false; env REGISTRY_WEBHOOK_SWITCH)"
    assert flags.help_text(Flag("x", "y", None)) == "y (no default; env REGISTRY_WEBHOOK_X)"


def test_resolving_twice_changes_nothing() -> None:
    namespace, _ = parse([COUNT], env={"REGISTRY_WEBHOOK_COUNT": "7"})
    assert flags.resolve(namespace, {"REGISTRY_WEBHOOK_COUNT": "1"}) == []
    assert namespace.count == 7
