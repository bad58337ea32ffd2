"""The local cloud: an embedded, SageMaker-compatible server (control plane, runtime, CloudWatch)."""
