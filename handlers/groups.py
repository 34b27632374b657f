"""Lookup of a symbol's group, benchmark, peers and region."""

from __future__ import annotations

from collections.abc import Iterable

from handlers.models import SymbolGroup

# Yahoo suffix -> region, for symbols that belong to no configured group.
_SUFFIX_REGION = {"HK": "CN", "SS": "CN", "SZ": "CN", "T": "JP", "L": "GB", "DE": "DE", "PA": "FR"}


class GroupIndex:
    """Answers 'which group, which benchmark, which peers' for any symbol."""

    def __init__(
        self,
        groups: Iterable[SymbolGroup],
        default_benchmark: str = "SPY",
        default_region: str = "US",
    ) -> None:
        self.groups: dict[str, SymbolGroup] = {}
        self._by_symbol: dict[str, SymbolGroup] = {}
        self.default_benchmark = default_benchmark
        self.default_region = default_region
        for group in groups:
            self.groups[group.id] = group
            for sym in group.symbols:
                self._by_symbol.setdefault(sym, group)
        self._peers = {
            sym: tuple(s for s in group.symbols if s != sym)
            for sym, group in self._by_symbol.items()
        }

    def group_of(self, symbol: str) -> SymbolGroup | None:
        return self._by_symbol.get(symbol)

    def benchmark_of(self, symbol: str) -> str:
        group = self._by_symbol.get(symbol)
        benchmark = group.benchmark if group else self.default_benchmark
        # A group's benchmark is judged against the market; the market has no benchmark.
        if benchmark == symbol:
            return self.default_benchmark
        return benchmark

    def is_market(self, symbol: str) -> bool:
        return symbol == self.default_benchmark

    def peers_of(self, symbol: str) -> tuple[str, ...]:
        return self._peers.get(symbol, ())

    def region_of(self, symbol: str) -> str:
        group = self._by_symbol.get(symbol)
        if group is not None:
            return group.region
        if "." in symbol:
            return _SUFFIX_REGION.get(symbol.rsplit(".", 1)[1], self.default_region)
        return self.default_region

    def reference_symbols(self, symbols: Iterable[str]) -> set[str]:
        """Benchmarks, peers and the market needed to judge SYMBOLS, so one fetch covers them."""
        needed: set[str] = {self.default_benchmark}
        for sym in symbols:
            needed.add(self.benchmark_of(sym))
            needed.update(self.peers_of(sym))
        return needed
