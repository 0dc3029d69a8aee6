# The dashboard (and, with another command, an instrumented worker) against an external PostgreSQL.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv/jobdash
COPY pyproject.toml README.md ./
COPY app ./app
COPY jobs ./jobs
COPY migrations ./migrations
COPY .streamlit ./.streamlit
RUN pip install . && useradd --create-home jobdash
USER jobdash

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health').read() != b'ok')"
# Set JOBDASH_DATABASE_URL; run `jobdash migrate` once (e.g. as an init container).
CMD ["jobdash", "serve", "--host", "0.0.0.0", "--port", "8501"]
