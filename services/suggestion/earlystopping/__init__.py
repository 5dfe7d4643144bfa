"""Katib-compatible early stopping (``api.v1.beta1.EarlyStopping``): ``medianstop``.

``python -m services.suggestion.earlystopping --port 6788 [--db-manager HOST:PORT]``.
"""
