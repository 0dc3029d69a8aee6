"""Numbered plain-SQL migrations, applied in order by `jobdash migrate`."""
