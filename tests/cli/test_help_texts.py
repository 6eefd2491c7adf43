"""The command line is a contract: every command's help text stays byte-identical to the one kept in help/."""

from pathlib import Path

import pytest

from napari_mia.cli import main

HELP = Path(__file__).parent / "help"
COMMANDS = ["napari-mia", "train", "predict", "evaluate", "measure", "export", "curve", "rank", "info", "demo"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_text_is_unchanged(command, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")  # argparse wraps to the terminal's width
    with pytest.raises(SystemExit) as stop:
        main([*([] if command == "napari-mia" else [command]), "--help"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == (HELP / f"{command}.txt").read_text()


def test_every_command_has_its_help_text(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = capsys.readouterr().out.split("{", 1)[1].split("}", 1)[0].split(",")
    assert set(listed) == set(COMMANDS) - {"napari-mia"}
    kept = {p.stem for p in HELP.glob("*.txt")}
    assert kept == set(COMMANDS)
