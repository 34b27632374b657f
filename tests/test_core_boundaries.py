"""The core stays platform-free: no platform SDK, no data-vendor library, no clock reads."""

from __future__ import annotations

import ast
from pathlib import Path

HANDLERS = Path(__file__).resolve().parents[1] / "handlers"
FORBIDDEN = {"discord", "slack_bolt", "slack_sdk", "yfinance", "apscheduler", "requests", "aiohttp"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_handlers_import_no_platform_or_vendor_library() -> None:
    offenders = {
        p.name: sorted(_imports(p) & FORBIDDEN)
        for p in HANDLERS.rglob("*.py")
        if _imports(p) & FORBIDDEN
    }
    assert offenders == {}


def test_handlers_never_read_the_clock() -> None:
    offenders = []
    for path in HANDLERS.rglob("*.py"):
        text = path.read_text()
        for call in ("datetime.now(", "datetime.utcnow(", "time.time(", "date.today("):
            if call in text:
                offenders.append(f"{path.name}: {call}")
    assert offenders == []
