"""Regression cases and load tests against endpoints through the SageMaker runtime API; SLOs, baselines."""
