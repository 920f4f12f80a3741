"""Build, test and release multi-arch CUDA wheels and container images from one matrix.toml."""

__version__ = "0.1.0"
