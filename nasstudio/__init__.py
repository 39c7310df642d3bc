"""nasstudio: a workbench for hardware-aware NAS of Transformer machine-translation models."""

__version__ = "0.1.0"
