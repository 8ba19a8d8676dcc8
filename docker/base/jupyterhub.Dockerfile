# syntax=docker/dockerfile:1
# Local stand-in for the Zero-to-JupyterHub hub image (quay.io/jupyterhub/k8s-hub), for machines that
# cannot pull it (scripts/build-base-images.sh builds it). It is NOT that image: it is Debian
# bookworm's JupyterHub 3.0 with the same shape docker/hub/Dockerfile relies on — a system-wide
# Python whose `pip` installs as root, a `jupyterhub` command, and uid 1000 as the running user.
ARG DEBIAN_IMAGE=debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
# tornado's own test suite is left out (it carries a public test private key image scanners report;
# the z2jh image's pip-installed tornado has it too, in a layer no Dockerfile on top can change).
# Debian marks its Python as externally managed (PEP 668); the z2jh image's Python is not, and the
# hub Dockerfile installs the spawner with plain `pip install`. Where this stand-in is used there is
# no Python package index: pip builds with the installed setuptools (PIP_NO_BUILD_ISOLATION=0 turns
# isolation off) and never looks for one.
ENV PIP_BREAK_SYSTEM_PACKAGES=1 \
    PIP_NO_BUILD_ISOLATION=0 \
    PIP_NO_INDEX=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      jupyterhub python3-pip python3-setuptools python3-wheel python-is-python3 \
 && rm -rf /var/lib/apt/lists/* /usr/lib/python3/dist-packages/tornado/test \
 && groupadd --gid 1000 jovyan \
 && useradd --uid 1000 --gid 1000 --home-dir /home/jovyan --create-home --shell /bin/bash jovyan \
 && install -d -o 1000 -g 1000 /srv/jupyterhub
# Debian's configurable-http-proxy finds its modules only under /usr/share/nodejs.
ENV NODE_PATH=/usr/share/nodejs
WORKDIR /srv/jupyterhub
USER 1000
CMD ["jupyterhub", "--config", "/usr/local/etc/jupyterhub/jupyterhub_config.py"]
