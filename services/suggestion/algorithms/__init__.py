"""Katib-compatible suggestion algorithms, each servable as a gRPC process.

``python -m services.suggestion.algorithms --algorithm tpe --port 6789``; see ``base.py`` for
the Algorithm interface, ``servicer.py`` for the Katib contract, ``registry.py`` to add one.
"""
