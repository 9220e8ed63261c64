# syntax=docker/dockerfile:1
# Povhub hub image: one image for every `povhub` command (worker, topics, migrate, connect, ...).
#   docker build -t povhub .
#   docker run --rm povhub --help

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# README.m[d]: the glob lets the build work before README.md exists (setuptools only warns).
COPY pyproject.toml README.m[d] ./
COPY povhub/ povhub/
COPY schemas/ schemas/
COPY pipeline/ pipeline/
COPY connectors/ connectors/
COPY streams/ streams/
COPY sinks/ sinks/
# Every dependency ships a manylinux wheel for CPython 3.11, so no compiler is needed; building
# all wheels here keeps pip's build files out of the final image. Only the base dependencies: the
# embedded engines (`povhub[embedded]`: chdb with pandas and pyarrow, the Tansu broker, ~950 MB
# installed) are for `povhub demo` and the tests; the image talks to a ClickHouse server and Kafka.
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    POVHUB_DATA_DIR=/var/lib/povhub
# The bind mount keeps the wheels out of the image layers.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels povhub
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/povhub --create-home povhub
# POVHUB_DATA_DIR (embedded ClickHouse, logs, connector checkpoints) must be writable by the non-root
# user; docker-compose.yml mounts a named volume here, which inherits this ownership.
WORKDIR /var/lib/povhub
USER povhub
EXPOSE 6066
ENTRYPOINT ["povhub"]
CMD ["worker"]
