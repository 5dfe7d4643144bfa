"""Sextant's Kubernetes API server: Katib's resources served over the Kubernetes REST API
(kubectl, the ``kubernetes`` client and Katib's SDK work unchanged against a local stack)."""
