"""The ``sextant`` command: kubectl-style access to a Sextant stack (see ``main.py``)."""
