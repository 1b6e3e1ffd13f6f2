# Runtime image: the webhook server and the controllers, one command with subcommands.
#
# The base is pinned to one Python patch release on Debian 12 (bookworm): a rebuild gets
# the same interpreter; bump it on purpose. The image runs as a numeric non-root user on a
# read-only root filesystem (the pods mount an emptyDir at /tmp, the only place anything
# is written): tests/integration/test_image.py runs its command line that way.
FROM python:3.11.14-slim-bookworm AS build
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
RUN pip wheel --wheel-dir /wheels --constraint constraints.txt .

FROM python:3.11.14-slim-bookworm
LABEL org.opencontainers.image.title="registry-v2-policy" \
      org.opencontainers.image.description="Registry v2 admission webhooks, PushReview API and controllers" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.14-slim-bookworm"
# No bytecode written next to the installed modules (pip compiled them at install), no
# buffered log lines lost on a crash, and no home to write to.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/nonexistent
RUN useradd --uid 65532 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin registry
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels
USER 65532:65532
# https (webhooks, PushReview), metrics, health (controller).
EXPOSE 8443 8080 8081
ENTRYPOINT ["image-registry-webhook"]
CMD ["serve"]
