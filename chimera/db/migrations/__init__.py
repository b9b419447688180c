"""Alembic migrations for Chimera's schema (PostgreSQL and SQLite); run through chimera.db.migrate."""
