"""An "all matching" action running in the background: batches, progress, Stop.

The page that starts it keeps the `BulkRun` in its session and polls it; the run uses its own
connection (a long run must not hold one of the pool's, which the panels share).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from jobdash.app.actions.jobs import ActionResult
from jobdash.app.read.failed_jobs import FailedJobFilter
from jobdash.app.read.job_filter import JobFilter
from jobdash.core.auth.identity import Action, Identity
from jobdash.core.database import connect
from jobdash.core.errors import describe_error

# (conn, filter, actor, should_stop, progress) -> result: retry_all_matching, delete_all_matching,
# and the Jobs page's all-matching actions (app/actions/explorer.py)
BulkAction = Callable[..., ActionResult]


@dataclass
class BulkRun:
    action: Action
    job_filter: FailedJobFilter | JobFilter  # handed to the action as it is
    total: int
    stop: threading.Event = field(default_factory=threading.Event)
    progress: ActionResult | None = None
    result: ActionResult | None = None
    error: str | None = None
    thread: threading.Thread | None = None

    def start(
        self,
        run: BulkAction,
        database_url: str,
        actor: Identity,
        on_finish: Callable[[], None] = lambda: None,
    ) -> None:
        def target() -> None:
            try:
                with connect(database_url) as conn:
                    self.result = run(
                        conn,
                        self.job_filter,
                        actor,
                        should_stop=self.stop.is_set,
                        progress=self._record,
                    )
            except Exception as exc:  # reported on the page; what was done stays done
                self.error = describe_error(exc)
            finally:
                on_finish()

        name = f"jobdash bulk {self.action}"
        self.thread = threading.Thread(target=target, name=name, daemon=True)
        self.thread.start()

    def _record(self, result: ActionResult) -> None:
        self.progress = result

    @property
    def finished(self) -> bool:
        return self.thread is not None and not self.thread.is_alive()

    @property
    def processed(self) -> int:
        return self.progress.processed if self.progress else 0
