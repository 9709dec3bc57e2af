# SPDX-License-Identifier: Apache-2.0
# The aitask-controller image: built on Debian bookworm with CMake (Release, no tests), shipped
# on bookworm-slim with only the runtime libraries, running as the non-root user 65532 that the
# chart's restricted security context expects.
#   docker build -t aitask-operator:0.1.0 .

FROM debian:bookworm-slim AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        build-essential cmake ninja-build pkg-config ca-certificates \
        libcurl4-openssl-dev libjson-c-dev libyaml-dev libssl-dev libmicrohttpd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY src/ src/
COPY controller/ controller/
COPY aitaskctl/ aitaskctl/
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DAIT_TESTS=OFF \
 && ninja -C build aitask-controller aitaskctl \
 && strip build/aitask-controller build/aitaskctl

FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        libcurl4 libjson-c5 libyaml-0-2 libssl3 libmicrohttpd12 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/aitask-controller /src/build/aitaskctl /usr/local/bin/
LABEL org.opencontainers.image.title="aitask-operator" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/aitask-controller"]
