"""The README documents every setting and opens with the two set-up commands."""

from pathlib import Path

from accountdesk.core.settings import Settings

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_setting_is_documented():
    missing = [f"ACCOUNTDESK_{name.upper()}" for name in Settings.model_fields
               if f"`ACCOUNTDESK_{name.upper()}`" not in README]
    assert missing == []


def test_readme_opens_with_the_two_commands():
    block = README.split("```sh", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in block.strip().splitlines()] == ["make demo", "make test"]
