# syntax=docker/dockerfile:1
# The image of any one service, built from the repository root:
#   docker build --build-arg SERVICE=customer --build-arg VERSION=0.1.0 -t salesplatform/customer:0.1.0 .
# The build stage installs the locked third-party packages (each checked against its hash) and
# then the platform and that one service from source, without resolving anything, into
# /opt/venv. The runtime stage copies only that virtualenv: no tests, no development servers
# (salesplatform[dev]), no pip or build tools. A new service needs nothing here: its
# `services/<name>/pyproject.toml` and `<name>_service` package are all this file copies.
#
# The base is pinned by digest (python:3.11-slim, the Python the lock is compiled for); move
# the digest forward on purpose, with `docker buildx imagetools inspect python:3.11-slim`.
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

FROM ${PYTHON_IMAGE} AS build
ARG SERVICE
RUN test -n "${SERVICE}" || { echo "build with --build-arg SERVICE=<service name>" >&2; exit 1; }
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
COPY requirements/runtime.lock /build/runtime.lock
RUN /opt/venv/bin/pip install --require-hashes --only-binary=:all: -r /build/runtime.lock
COPY shared/pyproject.toml /build/shared/pyproject.toml
COPY shared/salesplatform /build/shared/salesplatform
COPY services/${SERVICE}/pyproject.toml /build/service/pyproject.toml
COPY services/${SERVICE}/${SERVICE}_service /build/service/${SERVICE}_service
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation /build/shared /build/service \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib \
    && /opt/venv/bin/pip uninstall --yes setuptools pip

FROM ${PYTHON_IMAGE} AS runtime
ARG SERVICE
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="salesplatform-${SERVICE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.description="The ${SERVICE} service of the sales platform"
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SALESPLATFORM_SERVICE=${SERVICE} \
    SALESPLATFORM_VERSION=${VERSION}
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
# Numeric, so Kubernetes can check runAsNonRoot without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000
# `serve` by default; the migration Job runs the same image with `migrate`.
ENTRYPOINT ["python", "-m", "salesplatform.launch"]
CMD ["serve"]
