# Cutover server image. Build: docker build --build-arg VERSION=v1.2.3 -t cutover .
# Run:  docker run -d -p 8443:8443 -v cutover-data:/var/lib/cutover cutover
#       (then `server --tls-cert … --tls-key …`, mounted read-only, for agents on
#       other hosts: the arguments replace the default "server")
# Keys: docker run --rm -v cutover-data:/var/lib/cutover cutover keys create --user alice
# The binary is static (pure-Go SQLite), so the runtime image needs no libc.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -buildid= -X main.version=${VERSION}" -o /out/cutover ./cmd/cutover \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/cutover /usr/local/bin/cutover
# The data directory belongs to the image's non-root user (65532), so a
# fresh named volume mounted there is writable.
COPY --from=build --chown=65532:65532 /out/data /var/lib/cutover
USER 65532:65532
VOLUME /var/lib/cutover
EXPOSE 8443
# Defaults through the environment, so that arguments given to `docker run`
# add to them rather than replace them.
ENV CUTOVER_LISTEN=0.0.0.0:8443 CUTOVER_DATA_DIR=/var/lib/cutover
ENTRYPOINT ["/usr/local/bin/cutover"]
CMD ["server"]
