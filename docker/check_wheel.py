"""Build-time check: the Jobdash wheel holds every file the package needs at run time."""

import sys
import zipfile
from pathlib import Path

SOURCE = Path("/src")
wheel = zipfile.ZipFile(sys.argv[1])
names = set(wheel.namelist())
expected = {
    "jobdash/" + str(path.relative_to(SOURCE))
    for folder in ("app", "core", "jobs", "migrations")
    for path in (SOURCE / folder).rglob("*")
    if path.is_file() and "__pycache__" not in path.parts and path.suffix in {".py", ".sql", ".png"}
}
missing = sorted(expected - names)
if missing:
    sys.exit(f"the wheel lacks {len(missing)} files: {', '.join(missing[:10])}")
print(f"wheel complete: {len(expected)} package files, migrations and favicon included")
