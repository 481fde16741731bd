"""Tests of speechsvc/models: the model registry, the shipped heads (models/ at the top level) and the CLI that
installs and runs them."""
