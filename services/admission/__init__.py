"""Sextant's defaulting and validation of Experiments as Kubernetes admission webhooks."""
