"""Sizes verify accepts, shared by the CLI's --help and the library check."""

DEFAULT_RANDOM = 1000
MAX_RANDOM = 100_000  # windows of 750 float32: 300 MB of input, well within a laptop's memory
