"""Recorded calls: inputs, file transcription, one recording through the engine and the analysis stages, its report,
atomic outputs and the job summary, and the runners (local, Ray, the REST job store)."""
