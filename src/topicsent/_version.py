"""The package version, in a module of its own so that code below the package face can
read it without importing ``topicsent`` (whose ``__init__`` loads the methods on demand)."""

__version__ = "0.1.0"
