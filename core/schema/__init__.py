"""Jobdash's schema in a database: migrate (files, runner), plan and check, uninstall."""

from jobdash.core.schema.files import Migration, Step, load_migrations, migration_files
from jobdash.core.schema.runner import MigrationReport, migrate, pending_migrations

__all__ = [
    "Migration",
    "MigrationReport",
    "Step",
    "load_migrations",
    "migrate",
    "migration_files",
    "pending_migrations",
]
