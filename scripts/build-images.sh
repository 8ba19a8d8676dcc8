#!/usr/bin/env bash
# Builds spawngate's three images from docker/ (repository root as context) with Docker or podman:
#   <registry>/spawngate:<tag>          docker/spawngate/Dockerfile  (the chart's image.repository)
#   <registry>/spawngate-kernel:<tag>   docker/kernel/Dockerfile     (config.kernels.image)
#   <registry>/spawngate-hub:<hub-tag>  docker/hub/Dockerfile        (z2jh hub.image)
#
# Usage: scripts/build-images.sh [options]
#   --engine docker|podman   default: docker if it answers, else podman
#   --registry PREFIX        image name prefix (default ghcr.io/spawngate, as the chart's values.yaml)
#   --tag TAG                spawngate and kernel tag (default: package.json's version = the chart's appVersion)
#   --hub-image IMAGE        z2jh hub image to build on (default quay.io/jupyterhub/k8s-hub:4.1.6)
#   --hub-tag TAG            default: <hub image tag>-spawngate<tag>, e.g. 4.1.6-spawngate0.1.0
#   --only LIST              comma-separated subset of spawngate,kernel,hub
#   --local-base             no registry to pull from: build the base images locally first
#                            (scripts/build-base-images.sh: debootstrap + Node.js + Debian's JupyterHub);
#                            the hub is then built on the JupyterHub 3.0 stand-in (tag jupyterhub3.0-spawngate<tag>),
#                            for tests only: --hub-image is ignored
#   --ca-file FILE           CA bundle npm trusts while building (a registry behind a TLS-inspecting
#                            proxy), e.g. /etc/ssl/certs/ca-certificates.crt; a build secret, in no layer
#   --no-cache               rebuild every layer (and, with --local-base, the bases)
#   --push                   push the built images (after `docker login` / `podman login`)
# Stdout: one line per image built, `<name> <image reference>`. Build output goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "build-images: $*" >&2; exit 2; }
ENGINE="${SPAWNGATE_ENGINE:-}"
REGISTRY=ghcr.io/spawngate
VERSION="$(node -p 'require("./package.json").version' 2>/dev/null || sed -n 's/^  "version": "\(.*\)",$/\1/p' package.json)"
TAG="$VERSION"
HUB_BASE=quay.io/jupyterhub/k8s-hub:4.1.6
HUB_TAG=""
ONLY=spawngate,kernel,hub
LOCAL_BASE=no
PUSH=no
CA_FILE=""
NO_CACHE=no
while [ $# -gt 0 ]; do
  case "$1" in
    --engine) ENGINE="${2:?}"; shift 2 ;;
    --registry) REGISTRY="${2:?}"; shift 2 ;;
    --tag) TAG="${2:?}"; shift 2 ;;
    --hub-image) HUB_BASE="${2:?}"; shift 2 ;;
    --hub-tag) HUB_TAG="${2:?}"; shift 2 ;;
    --only) ONLY="${2:?}"; shift 2 ;;
    --local-base) LOCAL_BASE=yes; shift ;;
    --push) PUSH=yes; shift ;;
    --ca-file) CA_FILE="${2:?}"; shift 2 ;;
    --no-cache) NO_CACHE=yes; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
done
# Names and tags end up in command lines and image references: only the characters references allow.
[[ "$REGISTRY" =~ ^[a-z0-9]([a-z0-9._:/-]*[a-z0-9])?$ ]] || die "--registry: not an image name prefix: $REGISTRY"
[[ "$TAG" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "--tag: not an image tag: $TAG"
[[ -z "$HUB_TAG" || "$HUB_TAG" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "--hub-tag: not an image tag: $HUB_TAG"
[[ "$HUB_BASE" =~ ^[a-z0-9][a-z0-9._:/@-]*$ ]] || die "--hub-image: not an image reference: $HUB_BASE"
[ -z "$CA_FILE" ] || [ -r "$CA_FILE" ] || die "--ca-file: cannot read $CA_FILE"
for w in ${ONLY//,/ }; do case "$w" in spawngate|kernel|hub) ;; *) die "--only: unknown image $w" ;; esac; done
want() { [[ ",$ONLY," == *",$1,"* ]]; }

if [ -z "$ENGINE" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then ENGINE=docker
  elif command -v podman >/dev/null; then ENGINE=podman
  else die "neither a running docker nor podman found"; fi
fi
case "$ENGINE" in docker|podman) ;; *) die "--engine: docker or podman, not $ENGINE" ;; esac
command -v "$ENGINE" >/dev/null || die "$ENGINE is not installed"

REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
common=(--build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION")
[ -z "$CA_FILE" ] || common+=(--secret "id=build-ca,src=$CA_FILE")
[ "$NO_CACHE" = no ] || common+=(--no-cache)
if [ "$ENGINE" = podman ]; then
  # Docker's image format keeps HEALTHCHECK (OCI's drops it); the per-Dockerfile ignore file is
  # BuildKit's convention, which this podman does not apply by itself.
  common+=(--format docker)
  ignore() { echo "--ignorefile docker/$1/Dockerfile.dockerignore"; }
else
  export DOCKER_BUILDKIT=1
  ignore() { :; }
fi

base_args=()
if [ "$LOCAL_BASE" = yes ]; then
  bases="$(SPAWNGATE_ENGINE="$ENGINE" SPAWNGATE_BASE_REBUILD="$NO_CACHE" bash scripts/build-base-images.sh)"
  node_image="$(sed -n 's/^NODE_IMAGE=//p' <<<"$bases")"
  debian_image="$(sed -n 's/^DEBIAN_IMAGE=//p' <<<"$bases")"
  HUB_BASE="$(sed -n 's/^HUB_IMAGE=//p' <<<"$bases")"
  [ -n "${HUB_TAG}" ] || HUB_TAG="jupyterhub3.0-spawngate$TAG"
  base_args=(--build-arg "NODE_IMAGE=$node_image" --build-arg "BASE_IMAGE=$debian_image")
fi
[ -n "$HUB_TAG" ] || HUB_TAG="${HUB_BASE##*:}-spawngate$TAG"

build() { # name dockerfile-dir reference extra-args...
  local name="$1" dir="$2" ref="$3"; shift 3
  local start=$SECONDS
  echo "build-images: building $ref" >&2
  # shellcheck disable=SC2046
  "$ENGINE" build "${common[@]}" $(ignore "$dir") "$@" -f "docker/$dir/Dockerfile" -t "$ref" . >&2
  echo "build-images: built $ref in $((SECONDS - start)) s" >&2
  if [ "$PUSH" = yes ]; then "$ENGINE" push "$ref" >&2; fi
  echo "$name $ref"
}

want spawngate && build spawngate spawngate "$REGISTRY/spawngate:$TAG" "${base_args[@]}"
want kernel && build kernel kernel "$REGISTRY/spawngate-kernel:$TAG" "${base_args[@]}"
want hub && build hub hub "$REGISTRY/spawngate-hub:$HUB_TAG" --build-arg "HUB_IMAGE=$HUB_BASE"
exit 0
