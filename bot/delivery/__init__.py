"""Delivery: the outbox and its tables, versioned payloads, the sent-log, the worker, pacing."""
