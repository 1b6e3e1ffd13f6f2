# Runtime image: the webhook server and the controllers, one command with subcommands.
#
# The base is pinned to one Python patch release on Debian 12 (bookworm): a rebuild gets
# the same interpreter; bump it on purpose. BASE may name another bookworm root with a
# Python 3.11 and its venv module: hack/build-images.sh passes the Debian root it makes
# with debootstrap where no registry is reachable. Everything goes into the virtualenv
# /opt/venv, so Debian's Python (no pip, PEP 668) and the public image's build alike.
# The image runs as a numeric non-root user on a read-only root filesystem (the pods
# mount an emptyDir at /tmp, the only place anything is written):
# tests/integration/test_image.py runs its command line that way.
#
# Reproducible: with the same SOURCE_DATE_EPOCH (and buildah's --timestamp, or BuildKit's
# rewrite-timestamp, set to it) the same inputs give the same digest; wheels and bytecode
# take their times from it.
#
# pip verifies TLS against the build machine's CA bundle when the build passes it as the
# secret `pip-ca` (`--secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt`): a secret
# is mounted for one RUN and leaves nothing in a layer or the history.
ARG BASE=python:3.11.14-slim-bookworm

FROM ${BASE} AS build
ARG SOURCE_DATE_EPOCH
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY cli ./cli
COPY webhook ./webhook
COPY frontdoor ./frontdoor
COPY serving ./serving
COPY controller ./controller
COPY nodeca ./nodeca
COPY kube ./kube
COPY quota ./quota
RUN --mount=type=secret,id=pip-ca,required=false \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && python3 -m venv /opt/venv \
    && /opt/venv/bin/pip wheel --wheel-dir /wheels --constraint constraints.txt . \
    && /opt/venv/bin/pip install --no-index /wheels/*.whl

FROM ${BASE}
ARG SOURCE_DATE_EPOCH
LABEL org.opencontainers.image.title="registry-v2-policy" \
      org.opencontainers.image.description="Registry v2 admission webhooks, PushReview API and controllers" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.14-slim-bookworm"
# No bytecode written next to the installed modules (pip compiled them at install), no
# buffered log lines lost on a crash, and no home to write to. The virtualenv's bin comes
# first, so the console script is found by name.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/nonexistent \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# The group first, so that 65532 has a name (useradd --user-group would take GID 1000).
RUN groupadd --gid 65532 registry \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin --no-log-init registry
# The same base in both stages, so the virtualenv's interpreter links stay right.
COPY --from=build /opt/venv /opt/venv
USER 65532:65532
# https (webhooks, PushReview), metrics, health (controller).
EXPOSE 8443 8080 8081
ENTRYPOINT ["image-registry-webhook"]
CMD ["serve"]
