"""Load and validate the user-editable YAML files (groups, macro events, companies)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from handlers.groups import GroupIndex
from handlers.models import MacroEvent, SymbolGroup
from handlers.symbols import SymbolError, normalize_symbol

CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_GROUPS = CONFIG_DIR / "groups.yaml"
DEFAULT_MACRO_EVENTS = CONFIG_DIR / "macro_events.yaml"
DEFAULT_COMPANIES = CONFIG_DIR / "companies.yaml"


class ConfigFileError(Exception):
    """A config or data file that cannot be used, with a message naming the file and the fix."""


def _symbol(value: str) -> str:
    try:
        return normalize_symbol(str(value))
    except SymbolError as exc:
        raise ValueError(str(exc)) from exc


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GroupSpec(_Strict):
    name: str = ""
    benchmark: str
    region: str = "US"
    themes: list[str] = Field(default_factory=list)
    symbols: list[str] = Field(min_length=1)

    @field_validator("benchmark")
    @classmethod
    def _bench(cls, v: str) -> str:
        return _symbol(v)

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, v: list[str]) -> list[str]:
        return [_symbol(s) for s in v]


class GroupsFile(_Strict):
    default_benchmark: str = "SPY"
    default_region: str = "US"
    groups: dict[str, GroupSpec] = Field(default_factory=dict)


class MacroEventSpec(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    title: str = Field(min_length=3)
    start: date
    end: date
    kind: Literal["catalyst", "backdrop"] = "catalyst"
    regions: list[str] = Field(default_factory=list)
    themes: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    symbols: list[str] = Field(default_factory=list)
    summary: str = ""
    links: list[str] = Field(default_factory=list)

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, v: list[str]) -> list[str]:
        return [_symbol(s) for s in v]

    @model_validator(mode="after")
    def _check(self) -> MacroEventSpec:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        if not (self.regions or self.themes or self.groups or self.symbols):
            raise ValueError("give at least one of regions, themes, groups or symbols")
        return self


class MacroEventsFile(_Strict):
    events: list[MacroEventSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> MacroEventsFile:
        ids = [e.id for e in self.events]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate event ids: {', '.join(dupes)}")
        return self


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read ({exc.strerror}).") from exc
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"{path}: not valid YAML: {exc}") from exc


def describe_validation_error(path: Path, exc: ValidationError) -> str:
    """One line per problem, each naming where in the file it is."""
    lines = [f"{path}: {exc.error_count()} problem(s):"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field (a typo?)"
        lines.append(f"  - {where}: {msg}")
    return "\n".join(lines)


def load_groups(path: Path | None = None) -> GroupIndex:
    """Read groups.yaml into a GroupIndex, or raise ConfigFileError saying what is wrong."""
    path = path or DEFAULT_GROUPS
    try:
        spec = GroupsFile.model_validate(_read_yaml(path))
        default_benchmark = _symbol(spec.default_benchmark)
    except ValidationError as exc:
        raise ConfigFileError(describe_validation_error(path, exc)) from exc
    except ValueError as exc:
        raise ConfigFileError(f"{path}: default_benchmark: {exc}") from exc
    groups = [
        SymbolGroup(
            id=gid,
            name=g.name or gid,
            symbols=tuple(g.symbols),
            benchmark=g.benchmark,
            region=g.region.upper(),
            themes=tuple(g.themes),
        )
        for gid, g in spec.groups.items()
    ]
    return GroupIndex(groups, default_benchmark, spec.default_region.upper())


def load_macro_events(path: Path | None = None) -> list[MacroEvent]:
    """Read macro_events.yaml, or raise ConfigFileError saying what is wrong and where."""
    path = path or DEFAULT_MACRO_EVENTS
    try:
        spec = MacroEventsFile.model_validate(_read_yaml(path))
    except ValidationError as exc:
        raise ConfigFileError(describe_validation_error(path, exc)) from exc
    return [
        MacroEvent(
            id=e.id,
            title=e.title,
            start=e.start,
            end=e.end,
            summary=" ".join(e.summary.split()),
            regions=tuple(r.upper() for r in e.regions),
            themes=tuple(e.themes),
            symbols=tuple(e.symbols),
            groups=tuple(e.groups),
            links=tuple(e.links),
            kind=e.kind,
        )
        for e in spec.events
    ]


class CompaniesFile(_Strict):
    companies: dict[str, str] = Field(default_factory=dict)
    # Brand names and other spellings per symbol, read by handlers.news.shipped_aliases.
    aliases: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("companies")
    @classmethod
    def _keys(cls, v: dict[str, str]) -> dict[str, str]:
        return {_symbol(sym): " ".join(name.split()) for sym, name in v.items() if name.strip()}


def load_company_names(path: Path | None = None) -> dict[str, str]:
    """Read companies.yaml (symbol -> company name), or raise ConfigFileError."""
    path = path or DEFAULT_COMPANIES
    try:
        return dict(CompaniesFile.model_validate(_read_yaml(path)).companies)
    except ValidationError as exc:
        raise ConfigFileError(describe_validation_error(path, exc)) from exc
