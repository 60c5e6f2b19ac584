"""pnp-vision: machine vision for pick-and-place rigs."""

__version__ = "0.1.0"

__all__ = ["__version__"]
