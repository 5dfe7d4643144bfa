"""Alembic migrations of the DB manager's schema (run with ``python -m services.db_manager migrate``)."""
