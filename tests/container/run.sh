#!/usr/bin/env bash
# The container image, tested for real (issue 14). Run by hand:
#
#   bash tests/container/run.sh          # builds jobdash:container-test, runs the checks
#   JOBDASH_IMAGE=jobdash:ops bash tests/container/run.sh   # reuse an image already built
#
# Needs a container engine and PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth). With
# no engine it says so and exits 0: CI may run it and skip. On machines without an image
# registry, BASE_IMAGE defaults to the local stand-in for python:3.11-slim that
# ../shared/tools/docker-local-base.sh builds. Every container uses --network host and
# listens on 127.0.0.1 only; a throwaway database is created and dropped.
#
# Checks: the image runs as a non-root user; `jobdash migrate` exits 0; the dashboard container
# answers /healthz 200, serves the page and /metrics, and its HEALTHCHECK turns healthy; a
# worker container runs jobs (succeeded count rising); `docker stop` stops the worker within
# its grace period, exit code 0, no job left in `doing`.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
STOP_GRACE_S=${STOP_GRACE_S:-30}
PG_URL=${PG_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
DB=jobdash_container_$$
DB_URL=${PG_URL%/*}/$DB
PORT=${PORT:-18501}
SERVE=jobdash-ct-serve-$$
WORKER=jobdash-ct-worker-$$
passed=0

say() { printf '%s\n' "container test: $*"; }
ok() { passed=$((passed + 1)); say "ok   $*"; }
fail() { say "FAIL $*"; exit 1; }

if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
  say "skipped: no container engine (docker info failed)"
  exit 0
fi

if [ -z "${JOBDASH_IMAGE:-}" ]; then
  if [ -z "${BASE_IMAGE:-}" ]; then
    local_base="$REPO/../shared/tools/docker-local-base.sh"
    if [ -f "$local_base" ]; then BASE_IMAGE=$(bash "$local_base"); else BASE_IMAGE=python:3.11-slim; fi
  fi
  JOBDASH_IMAGE=jobdash:container-test
  say "building $JOBDASH_IMAGE from $BASE_IMAGE"
  started=$(date +%s)
  docker build --quiet --network host --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$JOBDASH_IMAGE" . >/dev/null
  ok "image built in $(( $(date +%s) - started )) s ($(docker image inspect -f '{{.Size}}' "$JOBDASH_IMAGE" | awk '{printf "%d MB", $1/1e6}'))"
fi
IMAGE=$JOBDASH_IMAGE

in_image() { docker run --rm --network host -e "JOBDASH_DATABASE_URL=$DB_URL" "$IMAGE" "$@"; }
sql() { in_image python -c "import psycopg,sys; print(psycopg.connect(sys.argv[1], autocommit=True).execute(sys.argv[2]).fetchone()[0])" "$1" "$2"; }

cleanup() {
  docker rm -f "$SERVE" "$WORKER" >/dev/null 2>&1 || true
  docker run --rm --network host "$IMAGE" python -c \
    "import psycopg,sys; psycopg.connect(sys.argv[1], autocommit=True).execute('drop database if exists $DB with (force)')" \
    "$PG_URL" >/dev/null 2>&1 || true
}
trap cleanup EXIT

uid=$(docker run --rm "$IMAGE" id -u)
[ "$uid" != 0 ] || fail "the image runs as root"
ok "runs as uid $uid (non-root)"

sql "$PG_URL" "select 1" >/dev/null || fail "no PostgreSQL at $PG_URL"
docker run --rm --network host "$IMAGE" python -c \
  "import psycopg,sys; psycopg.connect(sys.argv[1], autocommit=True).execute('create database $DB')" "$PG_URL"

in_image jobdash migrate >/dev/null || fail "jobdash migrate"
ok "jobdash migrate exited 0"

# The image's own command binds every address: without sign-in it refuses, in one line.
refusal=$(docker run --rm --network host -e "JOBDASH_DATABASE_URL=$DB_URL" "$IMAGE" 2>&1) \
  && fail "the default command started without sign-in"
[ "$(wc -l <<<"$refusal")" -le 2 ] && grep -qi "sign-in" <<<"$refusal" \
  || fail "the refusal: $(head -c 300 <<<"$refusal")"
ok "the default command (0.0.0.0) refuses to start without sign-in: $refusal"

docker run -d --name "$SERVE" --network host --init --health-interval=2s --health-start-period=60s \
  -e "JOBDASH_DATABASE_URL=$DB_URL" "$IMAGE" jobdash serve --host 127.0.0.1 --port "$PORT" >/dev/null
get() { python3 -c "import sys,urllib.request
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=5); print(r.status); sys.stdout.write(r.read().decode())
except urllib.error.HTTPError as e: print(e.code); sys.stdout.write(e.read().decode())
except OSError: print(0)" "$1"; }
for _ in $(seq 1 120); do
  health=$(get "http://127.0.0.1:$PORT/healthz")
  [ "${health%%$'\n'*}" = 200 ] && break
  sleep 0.5
done
health=$(get "http://127.0.0.1:$PORT/healthz")
[ "$(head -1 <<<"$health")" = 200 ] || { docker logs "$SERVE" | tail -20; fail "/healthz: $health"; }
ok "/healthz 200 $(tail -n +2 <<<"$health")"
page=$(get "http://127.0.0.1:$PORT/")
[ "$(head -1 <<<"$page")" = 200 ] && grep -q '<div id="root">' <<<"$page" || fail "the page: $(head -c 300 <<<"$page")"
ok "the page serves (200, Streamlit's index)"
metrics=$(get "http://127.0.0.1:$PORT/metrics")
grep -q '^jobdash_database_up 1' <<<"$metrics" || fail "/metrics: $(head -c 300 <<<"$metrics")"
ok "/metrics serves jobdash_database_up 1"
for _ in $(seq 1 60); do
  status=$(docker inspect -f '{{.State.Health.Status}}' "$SERVE")
  [ "$status" = healthy ] && break
  sleep 1
done
[ "$status" = healthy ] || fail "HEALTHCHECK status $status"
ok "the image's HEALTHCHECK reports healthy"

docker run -d --name "$WORKER" --network host --init --stop-timeout "$STOP_GRACE_S" \
  -e "JOBDASH_DATABASE_URL=$DB_URL" "$IMAGE" \
  jobdash worker --concurrency 4 --shutdown-timeout 10 --name container-worker >/dev/null
defer() {
  in_image python -c "
import sys
from procrastinate import PsycopgConnector
from jobdash.jobs.demo.app import app, resize_image, send_newsletter_batch
with app.replace_connector(PsycopgConnector(conninfo=sys.argv[1])), app.open():
    for i in range(int(sys.argv[2])):
        resize_image.defer(image_id=i, width=64)
    for i in range(int(sys.argv[3])):
        send_newsletter_batch.defer(batch=i, size=10)
" "$DB_URL" "$1" "$2"
}
defer 40 0
succeeded() { sql "$DB_URL" "select count(*) from procrastinate_jobs where status = 'succeeded'"; }
first=""
for _ in $(seq 1 120); do
  n=$(succeeded)
  [ -z "$first" ] && [ "$n" -gt 0 ] && first=$n
  [ "$n" -ge 30 ] && break
  sleep 1
done
[ "$n" -ge 30 ] || { docker logs "$WORKER" | tail -20; fail "jobs did not run ($n succeeded)"; }
ok "jobs run: succeeded rose from ${first:-0} to $n"

defer 0 4
for _ in $(seq 1 60); do
  doing=$(sql "$DB_URL" "select count(*) from procrastinate_jobs where status = 'doing'")
  [ "$doing" -gt 0 ] && break
  sleep 0.5
done
started=$(date +%s.%N)
docker stop -t "$STOP_GRACE_S" "$WORKER" >/dev/null
took=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$started" "$(date +%s.%N)")
code=$(docker inspect -f '{{.State.ExitCode}}' "$WORKER")
left=$(sql "$DB_URL" "select count(*) from procrastinate_jobs where status = 'doing'")
[ "$code" = 0 ] || { docker logs "$WORKER" | tail -20; fail "worker exit code $code after docker stop"; }
[ "$left" = 0 ] || fail "$left jobs left in doing after the worker stopped"
python3 -c "import sys; sys.exit(float(sys.argv[1]) >= float(sys.argv[2]))" "$took" "$STOP_GRACE_S" \
  || fail "docker stop took ${took} s (grace ${STOP_GRACE_S} s): killed, not stopped"
ok "docker stop: worker exited 0 in ${took} s (grace ${STOP_GRACE_S} s; $doing jobs were doing), none left doing"

stopped=$(sql "$DB_URL" "select count(*) from jobdash_workers where stopped_at is not null")
[ "$stopped" -ge 1 ] || fail "the worker did not record its stop"
ok "the worker recorded its stop in jobdash_workers"

say "all $passed checks passed"
