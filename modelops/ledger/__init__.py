"""Append-only history of releases, deployments, test results, approvals and locks."""
