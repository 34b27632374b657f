"""Offline benchmarks and evaluation scripts (not shipped with the bot)."""
