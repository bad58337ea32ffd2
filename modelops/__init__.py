"""modelops: a GitOps deployment pipeline for ML models on Amazon SageMaker.

The package is a library; ``modelops.cli`` is the only part that knows about the terminal.
"""

__version__ = "0.1.0"
