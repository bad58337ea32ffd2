"""Environments, waves and rollouts: the SageMaker calls through boto3, gates, rollback, plan, drift."""
