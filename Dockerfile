# syntax=docker/dockerfile:1
# chaoslab's image: the CLI as its entrypoint, for the CronJob and the gate in deploy/
# and for CI jobs.
#
#   docker build -t registry.example.com/chaoslab:0.1.0 .
#   docker run --rm registry.example.com/chaoslab:0.1.0 validate /experiments/gameday.yaml
#
# The base is pinned by tag and digest (a tag can be pushed again, a digest cannot).
# To move to a newer patch release, update both FROM lines with the digest that
# `docker buildx imagetools inspect python:3.11.<patch>-slim-bookworm` prints.

# --- build: chaoslab's wheel and the wheels of its dependencies -----------------------
FROM python:3.11.11-slim-bookworm@sha256:081075da77b2b55c23c088251026fb69a7b2bf92471e491ff5fd75c192fd38e5 AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY chaoslab ./chaoslab
RUN pip wheel --wheel-dir /wheels .

# --- runtime: only the wheels installed, no sources, no build tools, not root ---------
FROM python:3.11.11-slim-bookworm@sha256:081075da77b2b55c23c088251026fb69a7b2bf92471e491ff5fd75c192fd38e5 AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels chaoslab \
    && groupadd --system --gid 10001 chaoslab \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/chaoslab --create-home chaoslab
WORKDIR /home/chaoslab
# Numeric, so that Kubernetes can verify runAsNonRoot without reading /etc/passwd.
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["chaoslab"]
CMD ["--help"]
