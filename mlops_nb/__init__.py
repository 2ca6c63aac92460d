"""mlops_nb: notebook-first MLOps."""
__version__ = "0.1.0"
