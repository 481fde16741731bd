"""The live service core: the engine (models loaded once, workers, stages, admission), the per-call session, the
event bus and its Redis broker, and the index of recent calls that views opening mid-call read."""
