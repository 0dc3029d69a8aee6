"""A dashboard's "delete all matching", alone in a process the test kills with SIGKILL.

    python -m tests.faults.bulk_child DATABASE_URL

Starts the run as the Failed jobs page does (app/ui/operations.start_bulk: a BulkRun on its
own thread and connection) and prints one line per committed batch.
"""

from __future__ import annotations

import sys
from typing import Any

from jobdash.app.actions import jobs as actions
from jobdash.app.actions.bulk import BulkRun
from jobdash.app.read.failed_jobs import FailedJobFilter
from jobdash.core.auth.identity import Action, Identity, Role


def delete_all_reporting(conn: Any, job_filter: FailedJobFilter, actor: Identity, **kwargs: Any):
    progress = kwargs.pop("progress")

    def report(result: actions.ActionResult) -> None:
        progress(result)
        print(f"batch done {result.done_count}", flush=True)

    return actions.delete_all_matching(conn, job_filter, actor, progress=report, **kwargs)


def main(url: str) -> int:
    run = BulkRun(Action.DELETE, FailedJobFilter(), total=0)
    run.start(delete_all_reporting, url, Identity("dashboard", Role.OPERATOR, "cli"))
    assert run.thread is not None
    run.thread.join()
    print(f"finished: {run.result.summary() if run.result else run.error}", flush=True)
    return 0 if run.error is None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
