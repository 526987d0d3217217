"""SER Workbench: multimodal speech emotion recognition analysis for Jupyter."""

__version__ = "0.1.0"
