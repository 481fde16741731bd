"""Tests of speechsvc/batch: recorded calls, chunks, reports and captions, the REST job API and its stores."""
