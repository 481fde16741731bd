"""Tests of speechsvc/runtime: the call session core, partial cadence, the event bus and broker, the call index."""
