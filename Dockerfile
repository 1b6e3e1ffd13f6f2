# Runtime image: the webhook server and the controllers, one command with subcommands.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cli ./cli
COPY webhook ./webhook
COPY controller ./controller
COPY kube ./kube
COPY quota ./quota
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --uid 65532 --no-create-home --shell /usr/sbin/nologin registry
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 65532:65532
EXPOSE 8443 9090
ENTRYPOINT ["image-registry-webhook"]
CMD ["serve"]
