"""Redis storage for Ranch."""

__version__ = "0.1.0"
