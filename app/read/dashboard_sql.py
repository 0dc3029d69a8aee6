"""The dashboard loaders' SQL, one constant per query; every value is a parameter.

Indexes and the jobdash_job_finishes / jobdash_failed_counts tables these rely on:
migrations/002_dashboard_indexes.sql.
"""

# Queue statistics, one round trip. Per-queue counts read only open jobs (jobdash_jobs_open_idx)
# and the failed-count ledger (a few rows per queue, exact); queue names come from a loose index
# scan of Procrastinate's queue_name index (one probe per distinct queue, not one per job).
QUEUE_STATS = """
with recursive queue_names(name) as (
    (select queue_name from procrastinate_jobs order by queue_name limit 1)
    union all
    select (select j.queue_name from procrastinate_jobs j
            where j.queue_name > q.name order by j.queue_name limit 1)
    from queue_names q where q.name is not null
),
open_counts as (
    select queue_name,
           count(*) filter (where status = 'todo'
                            and (scheduled_at is null or scheduled_at <= now())) as ready,
           count(*) filter (where status = 'todo' and scheduled_at > now()) as scheduled,
           count(*) filter (where status = 'doing') as doing,
           min(id) filter (where status = 'todo'
                           and (scheduled_at is null or scheduled_at <= now())) as oldest_ready_id
    from procrastinate_jobs
    where status in ('todo', 'doing')
    group by queue_name
),
failed_counts as (
    select queue_name, sum(delta)::bigint as failed
    from jobdash_failed_counts
    group by queue_name
),
window_stats as (
    select count(*) filter (where outcome = 'succeeded') as succeeded,
           count(*) filter (where outcome = 'failed') as failed,
           avg(duration_ms) as avg_duration_ms
    from jobdash_job_finishes
    where finished_at > now() - make_interval(secs => %(window_seconds)s)
      and finished_at <= now()
)
select 'queue' as kind, q.name, coalesce(o.ready, 0), coalesce(o.scheduled, 0),
       coalesce(o.doing, 0), coalesce(f.failed, 0),
       -- The oldest ready job is the one with the lowest id (ids grow with deferral); its
       -- `deferred` event gives its age.
       (select extract(epoch from now() - min(e.at))
          from procrastinate_events e
         where e.job_id = o.oldest_ready_id and e.type = 'deferred')::float8
           as oldest_ready_age_s,
       null::float8 as avg_duration_ms
from queue_names q
left join open_counts o on o.queue_name = q.name
left join failed_counts f on f.queue_name = q.name
where q.name is not null
union all
select 'window', null, null, null, null, w.succeeded, w.failed, w.avg_duration_ms
from window_stats w
order by 1 desc, 2
"""

WORKERS = """
select w.id,
       jw.hostname,
       jw.pid,
       jw.concurrency,
       jw.cpu_percent,
       jw.memory_mb,
       w.last_heartbeat,
       extract(epoch from now() - w.last_heartbeat)::float8 as heartbeat_age_s,
       (select count(*) from procrastinate_jobs j
         where j.worker_id = w.id and j.status = 'doing') as jobs,
       jw.worker_name,
       jw.queues
from procrastinate_workers w
left join jobdash_workers jw on jw.worker_id = w.id
order by w.id
"""

# Doing jobs whose worker row is gone or not among the healthy workers (decided by the
# health rule in Python and passed in). First row: the counts; then the listed stalled jobs.
DOING_AND_STALLED = """
with stalled as (
    select id, queue_name, task_name, worker_id
    from procrastinate_jobs
    where status = 'doing'
      and (worker_id is null or not (worker_id = any(%(healthy_ids)s::bigint[])))
)
select 'counts' as kind,
       (select count(*) from procrastinate_jobs where status = 'doing') as id,
       (select count(*) from stalled)::text as queue_name, null as task_name, null as worker_id
union all
(select 'job', id, queue_name, task_name, worker_id from stalled order by id limit %(limit)s)
"""

# First row: the exact total (sum of the failed-count ledger). Then the newest failures:
# walk jobdash_job_finishes_failed_idx (finished_at desc, job_id desc) newest first, keep jobs
# that are still failed.
FAILED_JOBS = """
select 'total' as kind,
       (select coalesce(sum(delta), 0) from jobdash_failed_counts)::bigint as id,
       null as queue_name, null as task_name, null::jsonb as args, null as args_text,
       null::timestamptz as failed_at, null::int as attempts, null as error
union all
(
    select 'job', j.id, j.queue_name, j.task_name,
           -- Big args are not shipped whole: the preview needs only the first characters.
           case when pg_column_size(j.args) <= %(max_args_bytes)s then j.args end,
           case when pg_column_size(j.args) > %(max_args_bytes)s
                then left(j.args::text, %(preview_chars)s) end,
           f.finished_at, j.attempts,
           (select left(err.exception_type || ': ' || err.message, %(max_error_chars)s)
              from jobdash_job_errors err
             where err.job_id = j.id
             order by err.attempt desc, err.id desc
             limit 1)
    from jobdash_job_finishes f
    -- A lateral lookup the planner cannot flatten (offset 0): it keeps walking the finishes
    -- index newest first and stops at the limit. As a plain join it misjudges how many failed
    -- finishes are still failed and hashes or sorts every failed job (7 ms at 100 k).
    cross join lateral (
        select j.id, j.queue_name, j.task_name, j.args, j.attempts
        from procrastinate_jobs j
        where j.id = f.job_id and j.status = 'failed'
        offset 0
    ) j
    where f.outcome = 'failed'
    order by f.finished_at desc, f.job_id desc
    limit %(limit)s
)
"""

# The scheduler's three statements, sent together in one round trip (pipeline mode).
# Published periodic definitions with their last deferred tick (Procrastinate keeps only the
# latest per task and periodic_id).
PERIODIC_TASKS = """
select p.task_name, p.periodic_id, p.cron, p.queue_name, p.first_published_at,
       to_timestamp(d.last_defer) as last_run, x.disabled_at, x.disabled_by
from jobdash_periodic_tasks p
left join lateral (
    select max(pd.defer_timestamp) as last_defer
    from procrastinate_periodic_defers pd
    where pd.task_name = p.task_name and pd.periodic_id = p.periodic_id
) d on true
left join jobdash_periodic_disabled x
  on x.task_name = p.task_name and x.periodic_id = p.periodic_id
order by 1, 2
"""

# One-time jobs (todo with a scheduled_at): how many, how many are due, the next future one.
ONETIME_COUNTS = """
select now() as now,
       count(*) as total,
       count(*) filter (where scheduled_at <= now()) as due,
       min(scheduled_at) filter (where scheduled_at > now()) as next_at
from procrastinate_jobs
where status = 'todo' and scheduled_at is not null
"""

# The earliest one-time jobs, in run order.
ONETIME_JOBS = """
select id, task_name, queue_name, scheduled_at
from procrastinate_jobs
where status = 'todo' and scheduled_at is not null
order by scheduled_at, id
limit %(limit)s
"""

PERIODIC_DEFERS = """
select task_name, periodic_id, to_timestamp(max(defer_timestamp))
from procrastinate_periodic_defers
where task_name = any(%(task_names)s)
group by task_name, periodic_id
"""

NOW = "select now()"
