# One image for the dashboard, the instrumented worker and migrations:
#   docker run IMAGE                                  -> jobdash serve on 0.0.0.0:8501
#   docker run IMAGE jobdash migrate                  -> apply the schema, exit
#   docker run IMAGE jobdash worker --app pkg.mod:app -> an instrumented worker
# BASE_IMAGE: the official image by default; the container test passes a local stand-in.
ARG BASE_IMAGE=python:3.11-slim

# Stage 1: every wheel (Jobdash's and its dependencies'), then one virtualenv installed from
# those wheels only (--no-index: proves the set is complete) and checked for its data files.
FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
# jobdash/ holds symlinks to app/, core/, jobs/ and migrations/: the targets must be there too.
COPY jobdash ./jobdash
COPY app ./app
COPY core ./core
COPY jobs ./jobs
COPY migrations ./migrations
COPY docker/check_wheel.py /tmp/check_wheel.py
RUN pip wheel --wheel-dir /wheels . \
 && python /tmp/check_wheel.py /wheels/jobdash-*.whl \
 && python -m venv /opt/jobdash \
 && /opt/jobdash/bin/pip install --no-index --find-links /wheels jobdash \
 && find /opt/jobdash -name __pycache__ -prune -exec rm -rf {} +

# Stage 2: the runtime. No compiler, no pip cache, no wheels, no sources: the virtualenv only
# (with its pip: an image FROM this one installs the team's own App next to Jobdash).
FROM ${BASE_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/jobdash/bin:$PATH \
    JOBDASH_DATA_DIR=/home/jobdash/.jobdash
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/jobdash jobdash
COPY --from=build /opt/jobdash /opt/jobdash
COPY docker/healthcheck.py /usr/local/bin/jobdash-healthcheck
# Streamlit reads .streamlit/config.toml from the working directory (CSV export of the grid off).
COPY .streamlit /srv/jobdash/.streamlit
WORKDIR /srv/jobdash
USER jobdash

EXPOSE 8501
# The dashboard's /healthz (database answers, schema migrated); a worker or migrate container
# has no HTTP server, so the check passes there (see docker/healthcheck.py).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "/usr/local/bin/jobdash-healthcheck"]
# Set JOBDASH_DATABASE_URL; run `jobdash migrate` once per release (a one-shot container).
# On 0.0.0.0 `serve` needs sign-in (JOBDASH_USERS or JOBDASH_OIDC_*) and refuses to start
# without it, in one line; JOBDASH_ALLOWED_HOSTS names the host the URL uses.
CMD ["jobdash", "serve", "--host", "0.0.0.0", "--port", "8501"]
