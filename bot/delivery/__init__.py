"""Delivery: the outbox, its worker, per-platform pacing and attempt notes."""
