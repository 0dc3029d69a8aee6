"""Jobdash: the live operations dashboard for Procrastinate job queues.

The one import name the distribution installs. Its subpackages are the repository's
top-level folders: `jobdash.app` (app/: the dashboard, its read models, actions and the CLI),
`jobdash.jobs` (jobs/: what runs beside a team's workers) and `jobdash.migrations`
(migrations/: plain SQL). The stable API for workers is `jobdash.instrumentation`.
"""
