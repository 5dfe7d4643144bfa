"""The DB manager: Katib's DBManager API (observation logs) and Sextant's resource store."""
