# syntax=docker/dockerfile:1
# Trailmap: multi-stage, static binary (cgo for SQLite), non-root, data in /data.

FROM node:20-bookworm-slim AS js
WORKDIR /src
COPY recorder/js/package.json recorder/js/package-lock.json recorder/js/
COPY ui/web/package.json ui/web/package-lock.json ui/web/
RUN cd recorder/js && npm ci --no-audit --no-fund && cd ../../ui/web && npm ci --no-audit --no-fund
COPY recorder/js recorder/js
COPY ui/web ui/web
RUN mkdir -p recorder/dist ui/dist && cd recorder/js && npm run build && cd ../../ui/web && npm run build

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
COPY --from=js /src/recorder/dist recorder/dist
COPY --from=js /src/ui/dist ui/dist
ARG VERSION=dev
RUN CGO_ENABLED=1 go build -trimpath \
      -tags osusergo,netgo,sqlite_omit_load_extension \
      -ldflags "-s -w -X main.version=${VERSION} -extldflags=-static" \
      -o /out/trailmap ./cmd/trailmap \
 && mkdir -p /out/data

# The variant with server-side renders (videos, GIFs, heatmap report
# images): Debian's Chromium and ffmpeg next to the same binary. Build it
# with `docker build --target render -t trailmap:render .`; see README
# (Docker) for its size.
FROM debian:bookworm-slim AS render
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      chromium ffmpeg fonts-dejavu-core fonts-liberation ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 65532 --home /data nonroot
COPY --from=build /out/trailmap /trailmap
COPY --from=build --chown=nonroot:nonroot /out/data /data
USER nonroot:nonroot
VOLUME ["/data"]
EXPOSE 8080
ENV TRAILMAP_DATA=/data TRAILMAP_ADDR=0.0.0.0:8080 CHROMIUM_BIN=/usr/bin/chromium
HEALTHCHECK NONE
ENTRYPOINT ["/trailmap"]
CMD ["serve"]

# The default image: the binary alone (renders answer 503
# renderer_unavailable; everything else works).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/trailmap /trailmap
COPY --from=build --chown=nonroot:nonroot /out/data /data
USER nonroot:nonroot
VOLUME ["/data"]
EXPOSE 8080
ENV TRAILMAP_DATA=/data TRAILMAP_ADDR=0.0.0.0:8080
HEALTHCHECK NONE
ENTRYPOINT ["/trailmap"]
CMD ["serve"]
