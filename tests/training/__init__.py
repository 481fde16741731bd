"""Tests of speechsvc/training: the operator's labelled intent files and the labelling sheet."""
