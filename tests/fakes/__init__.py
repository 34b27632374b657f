"""In-memory fakes of the core's ports and of a chat platform, for tests."""

from tests.fakes.platform import AlertRecorder, MemoryNotifier, Sent, TestPlatform

__all__ = ["AlertRecorder", "MemoryNotifier", "Sent", "TestPlatform"]
