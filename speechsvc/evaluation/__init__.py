"""Evaluation of the service's stages on labelled data (ASR accuracy, PII redaction)."""
