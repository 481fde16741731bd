"""Tests of speechsvc/console: what the server serves, and the console in a real headless Chromium."""
