"""The command line's `--help` and the README's synopsis of it say the same: a newcomer reads
one and types what the other names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelshelf.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"
COMMANDS = ("serve", "scan", "migrate-legacy", "check", "backup")


def synopsis() -> dict[str, str]:
    """Each command's line of the README's "Command line" synopsis, after its name."""
    text = README.read_text(encoding="utf-8").split("## Command line", 1)[1]
    lines = re.findall(r"^    modelshelf (\S+) +(.*)$", text, flags=re.MULTILINE)
    return dict(lines)


def usage(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps its usage lines


def test_the_readme_has_a_synopsis_line_for_every_command() -> None:
    assert sorted(synopsis()) == sorted(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_names_the_options_and_arguments_as_the_readme_does(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--type TYPES`, `--data-dir DATA_DIR`, `target` in --help read as other options than
    the README's `--type TYPE`, `--data-dir DIR` and `TARGET`."""
    shown = usage(command, capsys)
    written = synopsis()[command]
    # Each also takes --config-dir DIR and --log-level LEVEL (the README says so once).
    options = re.findall(r"(--[a-z-]+)(?: ([A-Z]+))?", written)
    options += [("--config-dir", "DIR"), ("--log-level", "LEVEL")]
    for option, metavar in options:
        assert f"{option} {metavar}".strip() in shown, (option, metavar, shown)
    for positional in re.findall(r"(?<![-\w])([A-Z]+)$", written):
        assert re.search(rf"\b{positional}\b", shown), (positional, shown)
