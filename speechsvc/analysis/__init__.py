"""Per-utterance and per-call text analysis: number normalisation (ITN) and PII redaction."""
