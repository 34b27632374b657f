"""The settings table (name, environment, default, meaning), generated from the settings model."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic.fields import FieldInfo

from config.loader import CONFIG_DIR
from config.settings import DEFAULT_TOML, TOML_ENV, describe, env_names, setting_fields

REPO_DIR = CONFIG_DIR.parent
README_START = "<!-- settings-table:start (generated: make settings-table) -->"
README_END = "<!-- settings-table:end -->"


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value: object = info.default_factory()  # type: ignore[call-arg]
    else:
        value = info.default
    if value is None:
        return "(unset)"
    if isinstance(value, Path):
        try:
            return str(value.relative_to(REPO_DIR))
        except ValueError:
            return str(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict | list) and not value:
        return "(empty)"
    return str(value)


def settings_rows() -> list[tuple[str, str, str, str]]:
    """(setting, environment variables, default, description) for every setting, in model order
    (platform ones dotted: `slack.port` is `port` in the TOML file's [slack] table)."""
    return [
        (name, " or ".join(env_names(name)), _default(info), describe(name))
        for name, info in setting_fields().items()
    ]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def settings_markdown() -> str:
    """The table as Markdown, as the README shows it."""
    lines = [
        "| setting | environment | default | what it does |",
        "|---|---|---|---|",
    ]
    for name, env, default, description in settings_rows():
        lines.append(
            f"| `{name}` | `{env}` | `{_cell(default)}` | {_cell(description)} |".replace("`` ", "")
        )
    lines.append("")
    lines.append(
        f"Environment variables win over `.env`, which wins over `{DEFAULT_TOML}` "
        f"(or the file named by `{TOML_ENV}`); secrets are read from the environment or `.env` "
        "only. Platform settings are dotted: `slack.port` is `port` in the file's `[slack]` table "
        "(the older flat names such as `slack_port` are still read)."
    )
    return "\n".join(lines)


def settings_text() -> str:
    """The table for a terminal: one setting a block."""
    blocks = []
    for name, env, default, description in settings_rows():
        blocks.append(f"{name}\n  env: {env}\n  default: {default}\n  {description}".rstrip())
    return "\n".join(blocks)


def _section(text: str) -> re.Match[str] | None:
    return re.search(re.escape(README_START) + r"\n(.*?)" + re.escape(README_END), text, re.S)


def readme_section(text: str) -> str | None:
    """The generated part of a README's text, or None when its markers are missing."""
    match = _section(text)
    return match.group(1).removesuffix("\n") if match else None


def update_readme(path: Path) -> bool:
    """Rewrite the table between the markers in PATH; True when it changed."""
    text = path.read_text(encoding="utf-8")
    match = _section(text)
    if match is None:
        raise SystemExit(f"{path}: no {README_START} ... {README_END} markers")
    new = settings_markdown()
    if match.group(1).removesuffix("\n") == new:
        return False
    block = f"{README_START}\n{new}\n{README_END}"
    path.write_text(text[: match.start()] + block + text[match.end() :], encoding="utf-8")
    return True


if __name__ == "__main__":
    update_readme(REPO_DIR / "README.md")
