# Multi-stage build: one image carries the `egw` command for every component
# (controller-manager, gateway daemon, cni-manager) and the CNI plugin binary.
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY csrc ./csrc
COPY egw ./egw
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && pip wheel --wheel-dir /wheels /wheels/egw-*.whl

FROM python:3.11-slim-bookworm
# iptables/iproute2 for the gateway daemon's netns work; nothing else from the build stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables iproute2 wireguard-tools \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels egw && rm -rf /wheels
ENTRYPOINT ["egw"]
