"""The dashboard loaders' SQL, one constant per query; every value is a parameter.

What they read costs the same with a hundred or a million jobs waiting: the functions of
migrations/006_light_hot_path.sql read the oldest open jobs through Procrastinate's own index
up to a cap, the failed-count ledger gives exact failed counts, the history rollup the last
hour's outcomes; none of them needs an index of ours on Procrastinate's tables.
Statements a loader needs together go in one round trip (pipeline mode).
"""

from jobdash.core.history_tables import EVENT_BUCKETS_SQL

# The live panels read at most this many open jobs (the oldest), a few milliseconds' work.
OPEN_JOBS_CAP = 2_000

# Every queue, with its open jobs among the oldest `cap` (exact below the cap, lower bounds past
# it), its failed jobs (ledger, exact) and since when its longest-waiting ready job waits.
QUEUES = """
with open as (select * from jobdash_open_jobs(%(cap)s))
select q.name, coalesce(o.ready, 0), coalesce(o.scheduled, 0), coalesce(o.doing, 0),
       (select coalesce(sum(f.delta), 0) from jobdash_failed_counts f
         where f.queue_name = q.name)::bigint as failed,
       extract(epoch from now() - o.oldest_ready)::float8 as oldest_ready_age_s,
       coalesce(o.capped, (select bool_or(capped) from open), false)
from jobdash_queue_names() q(name)
left join open o on o.queue_name = q.name
order by q.name
"""

# The latest minute sample of each queue's depth (the rollup counts up to a larger cap), for
# an estimate where the live count hit its cap.
DEPTH_SAMPLES = """
select distinct on (queue_name) queue_name, bucket, ready_max, scheduled_max, doing_max, capped
from jobdash_queue_depth_minute
where bucket >= now() - make_interval(secs => %(max_age_s)s)
order by queue_name, bucket desc
"""

# Where the window's statistics come from: now, how far the rollup made history complete, and
# the event ids to read raw events from (a rollup mark, else a bisection of the events' ids).
WINDOW_BOUNDS = """
with bounds as (
    select now() as now, now() - make_interval(secs => %(window_seconds)s) as start,
           (select last_run_at from jobdash_rollup_state) as complete_to
)
select b.now, b.start, b.complete_to,
       (select coalesce(max(m.last_event_id), 0) from jobdash_rollup_marks m
         where m.taken_at <= greatest(b.start, coalesce(b.complete_to, b.start))),
       jobdash_event_id_before(b.start - interval '5 minutes')
from bounds b
"""

# The window's outcomes over the minutes the rollup made complete.
WINDOW_FROM_HISTORY = """
select coalesce(sum(succeeded), 0)::bigint, coalesce(sum(failed), 0)::bigint,
       coalesce(sum(duration_sum_ms), 0)::float8, coalesce(sum(duration_count), 0)::bigint
from jobdash_history_queue_minute
where bucket >= %(start)s and bucket < %(end)s
"""

# The window's outcomes from raw events (the tail since the rollup, or all of it without one).
WINDOW_FROM_EVENTS = f"""
select coalesce(sum(succeeded), 0)::bigint, coalesce(sum(failed), 0)::bigint,
       coalesce(sum(duration_sum_ms), 0)::float8, coalesce(sum(duration_count), 0)::bigint
from ({EVENT_BUCKETS_SQL}) tail
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
       -- Through the worker_id index: a worker runs at most its concurrency, stalled piles of
       -- a dead one are counted up to the cap.
       (select count(*) from (
            select 1 from procrastinate_jobs j
             where j.worker_id = w.id and j.status = 'doing' limit %(cap)s + 1) mine) as jobs,
       jw.worker_name,
       jw.queues
from procrastinate_workers w
left join jobdash_workers jw on jw.worker_id = w.id
order by w.id
"""

# Jobs in progress whose worker row is gone (stalled for certain), among the oldest `cap` open
# jobs, read once: how many, whether the count stopped at the cap, and the oldest `limit` of
# them to list (as arrays, oldest first).
ORPHANED = """
with seen as materialized (
    select id, queue_name, task_name, status, worker_id from jobdash_open_prefix(%(cap)s + 1)
), listed as (
    select id, queue_name, task_name from seen
     where status = 'doing' and worker_id is null
     order by id limit %(limit)s
)
select (select count(*) from seen where status = 'doing' and worker_id is null),
       (select count(*) > %(cap)s from seen),
       coalesce((select array_agg(id order by id) from listed), '{}'),
       coalesce((select array_agg(queue_name order by id) from listed), '{}'),
       coalesce((select array_agg(task_name order by id) from listed), '{}')
"""

# The unhealthy workers' stalled jobs to list: the first `cap` the worker_id index gives (a
# dead worker's pile of 100,000 is not read to list 50), the oldest `limit` of those.
STALLED_ON_WORKERS = """
select id, queue_name, task_name, worker_id from (
    select id, queue_name, task_name, worker_id from procrastinate_jobs
     where status = 'doing' and worker_id = any(%(unhealthy_ids)s::bigint[])
     limit %(cap)s) mine
order by id
limit %(limit)s
"""

# Every failed job, exact, from the ledger.
FAILED_TOTAL = "select coalesce(sum(delta), 0)::bigint from jobdash_failed_counts"

# The args of these jobs for their previews; big ones are not shipped whole (the preview needs
# only the first characters).
FAILED_ARGS = """
select id,
       case when pg_column_size(args) <= %(max_args_bytes)s then args end,
       case when pg_column_size(args) > %(max_args_bytes)s
            then left(args::text, %(preview_chars)s) end
from procrastinate_jobs
where id = any(%(ids)s::bigint[])
"""

# The latest recorded error of each of these jobs.
LATEST_ERRORS = """
select distinct on (job_id) job_id, left(exception_type || ': ' || message, %(max_chars)s)
from jobdash_job_errors
where job_id = any(%(ids)s::bigint[])
order by job_id, attempt desc, id desc
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

# One-time jobs (todo with a scheduled_at) among the oldest `cap` open jobs, read once: how
# many, how many are due, the next future one, whether the count stopped at the cap, and the
# earliest `limit` of them in run order (as arrays).
ONETIME = """
with seen as materialized (
    select id, task_name, queue_name, status, scheduled_at from jobdash_open_prefix(%(cap)s + 1)
), onetime as (
    select id, task_name, queue_name, scheduled_at from seen
     where status = 'todo' and scheduled_at is not null
), earliest as (
    select * from onetime order by scheduled_at, id limit %(limit)s
)
select now() as now,
       (select count(*) from onetime) as total,
       (select count(*) from onetime
         where scheduled_at < now() - make_interval(secs => %(grace_s)s)) as due,
       (select min(scheduled_at) from onetime where scheduled_at > now()) as next_at,
       (select count(*) > %(cap)s from seen) as capped,
       coalesce((select array_agg(id order by scheduled_at, id) from earliest), '{}'),
       coalesce((select array_agg(task_name order by scheduled_at, id) from earliest), '{}'),
       coalesce((select array_agg(queue_name order by scheduled_at, id) from earliest), '{}'),
       coalesce((select array_agg(scheduled_at order by scheduled_at, id) from earliest), '{}')
"""

PERIODIC_DEFERS = """
select task_name, periodic_id, to_timestamp(max(defer_timestamp))
from procrastinate_periodic_defers
where task_name = any(%(task_names)s)
group by task_name, periodic_id
"""

NOW = "select now()"
