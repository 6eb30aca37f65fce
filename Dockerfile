# The nexus-assets code location: one image serves the gRPC code server, the webserver and
# the daemon (as in Dagster's deploy_docker example). It starts from the project's own base
# image, because no image can be pulled here, and installs from build/wheelhouse, which
# scripts/build_image.sh fills on the host, so the build itself needs no network.
# BASE: the base image the bootstrap builds; scripts/build_image.sh passes the one the base-image
# map names (nexus_assets/core/base_images.toml), so the two never drift apart.
ARG BASE=nexus-base/bookworm:2
FROM ${BASE}
COPY build/wheelhouse /wheelhouse
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheelhouse nexus-assets \
 && rm -rf /wheelhouse \
 && mkdir -p /opt/dagster/home /opt/nexus-assets \
 && chown 10001 /opt/dagster/home
WORKDIR /opt/nexus-assets
COPY definitions.py workspace.yaml ./
ENV PATH=/opt/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    DAGSTER_HOME=/opt/dagster/home \
    NEXUS_WORKDIR=/opt/dagster/home/work
USER 10001
EXPOSE 4000 3000
HEALTHCHECK --interval=10s --timeout=5s --retries=5 CMD ["dagster", "api", "grpc-health-check", "-p", "4000"]
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-f", "definitions.py"]
