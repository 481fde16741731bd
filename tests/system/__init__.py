"""The service as a whole (no single layer): every surface on committed audio, the fuzz and fault suite, a fleet of
real processes."""
