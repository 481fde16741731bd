"""speechsvc: self-hosted streaming speech AI for call centers."""

__version__ = "0.2.0"
