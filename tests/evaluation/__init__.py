"""Tests of speechsvc/evaluation: scoring, telephone chains and the GPU capacity run."""
