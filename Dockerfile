# The image the Kubeflow Pipelines v2 spec names (`movierec pipeline compile --image ...`).
# Debian 13: TFX 1.21's ml-metadata and tensorflow-data-validation need glibc >= 2.39.
#
# Two variants of one recipe:
#   docker build -t movierec:latest .                              CPU (the default)
#   docker build --build-arg VARIANT=gpu -t movierec:gpu .        GPU, for `--trainer-gpus N`
# The GPU variant adds TensorFlow's `and-cuda` extra at the locked TensorFlow version: the CUDA
# runtime, cuDNN, cuBLAS, ... come as pip wheels, so the base image stays the same and the node needs
# only the NVIDIA driver (which Kubernetes' GPU device plugin / Vertex AI mount into the container).
# The CUDA wheels are not in requirements/lock.txt (the lock is the CPU environment, resolved here
# without them); TensorFlow's own metadata bounds them (< 13 for 2.21).
FROM debian:trixie-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

ARG VARIANT=cpu
# Dependencies first (the locked set), so code changes rebuild only the last layer. The extra's
# version must be the lock's tensorflow (tests/test_dockerfile.py checks it; pip would also refuse a
# mismatch against the -c constraint).
COPY requirements/ /src/movierec/requirements/
RUN case "$VARIANT" in \
      cpu) gpu_extra="" ;; \
      gpu) gpu_extra="tensorflow[and-cuda]==2.21.0" ;; \
      *) echo "VARIANT must be cpu or gpu, got '$VARIANT'" >&2; exit 1 ;; \
    esac \
 && pip install --no-cache-dir -r /src/movierec/requirements/runtime.txt ${gpu_extra:+"$gpu_extra"} \
      -c /src/movierec/requirements/lock.txt
COPY . /src/movierec
RUN pip install --no-cache-dir --no-deps /src/movierec
# The spec sets the entrypoint (TFX's Kubeflow v2 container launcher); nothing else to do here.
