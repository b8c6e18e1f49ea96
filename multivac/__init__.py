"""multivac: GitHub Actions history as metrics."""

__version__ = "0.1.0"
