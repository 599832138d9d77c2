"""Graph foundation model for personalization: shared glue (config, workspace, CLI)."""

__version__ = "0.1.0"
