"""Tests of speechsvc/analysis: the stages (intent, emotion, escalation, PII, QA, assist), their seam and contract."""
