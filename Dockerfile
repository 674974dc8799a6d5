# syntax=docker/dockerfile:1
# Container image for extauthz:  make image  (this machine's platform), or
# make image-push IMAGE=...  (linux/amd64 + linux/arm64 with docker buildx).
# Needs BuildKit (the RUN --mount caches below): the default builder since
# Docker 23; on older Docker set DOCKER_BUILDKIT=1. The legacy builder
# rejects this file. The binary is built by `make build`, so its flags are
# the Makefile's (CGO_ENABLED=0, -tags=vtprotobuf, -trimpath, -ldflags), and
# .github/workflows/release.yml builds the released image from this file.
# A static Go binary on distroless/static: no shell, no package manager, no
# libc; runs as uid 65532 with a read-only root filesystem (it writes nothing).

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG COMMIT=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
# The golang image has make; the Makefile sets CGO_ENABLED=0 itself.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    make build BIN=/out/extauthz VERSION="${VERSION}" COMMIT="${COMMIT}"

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/extauthz /extauthz
USER 65532:65532
# 9001: gRPC (ext_authz Check + grpc.health.v1); 9002: /healthz /readyz /metrics
EXPOSE 9001 9002
ENTRYPOINT ["/extauthz"]
CMD ["serve"]
