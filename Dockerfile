# The image the Kubeflow Pipelines v2 spec names (`movierec pipeline compile --image ...`).
# Debian 13: TFX 1.21's ml-metadata and tensorflow-data-validation need glibc >= 2.39.
FROM debian:trixie-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# Dependencies first (the locked set), so code changes rebuild only the last layer.
COPY requirements/ /src/movierec/requirements/
RUN pip install --no-cache-dir -r /src/movierec/requirements/runtime.txt -c /src/movierec/requirements/lock.txt
COPY . /src/movierec
RUN pip install --no-cache-dir --no-deps /src/movierec
# The spec sets the entrypoint (TFX's Kubeflow v2 container launcher); nothing else to do here.
