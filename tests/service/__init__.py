"""Tests of the top-level modules of speechsvc (speechsvc/*.py: protocol, workers, cli, config, app, log, metrics), and
test_units.py: small pure pieces of several layers."""
