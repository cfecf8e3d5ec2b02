import re
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def quick_start_commands() -> list[str]:
    readme = (PROJECT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for line in section.splitlines() if line.startswith("    ")]


def test_quick_start_has_exactly_two_commands_demo_and_tests():
    commands = quick_start_commands()
    assert len(commands) == 2
    assert commands[0].endswith("python -m ioi demo")
    assert re.search(r"-m pytest$", commands[1])


def test_ci_runs_the_readmes_test_command_verbatim():
    assert quick_start_commands()[1] in (PROJECT / ".ci" / "run").read_text().splitlines()
