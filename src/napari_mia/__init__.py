"""napari-mia: train deep-learning models on the labels you draw in napari."""

try:
    from ._version import version as __version__
except ImportError:  # running from a source tree without an install
    __version__ = "0.0.0"
