"""modelshelf: a library of AI model files, their metadata, tags and example images."""

__version__ = "0.1.0"
