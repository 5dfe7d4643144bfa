"""Katib-compatible early stopping (``api.v1.beta1.EarlyStopping``): ``medianstop`` and ``asha``.

``python -m services.suggestion.earlystopping --algorithm asha --port 6788 [--db-manager HOST:PORT]``.
"""
