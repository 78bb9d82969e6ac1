"""VPACK Sources: keep a verified local copy of every new packing-station video."""

__version__ = "0.1.0"
