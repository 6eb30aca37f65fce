# The nexus-assets code location: one image serves the gRPC code server, the webserver, the
# daemon and each run's own container under dagster-docker's DockerRunLauncher (as in Dagster's
# deploy_docker example; deploy/dagster/ and scripts/dagster_stack.sh). It starts from the public
# python:3.11-slim, so it builds on any machine (here the bootstrap's base-image map provides
# that name: nexus_assets/target/base_images.toml), and installs from build/wheelhouse, which
# scripts/build_image.sh fills on the host, so the pip step needs no network.
FROM python:3.11-slim
# What a run calls besides Python, from Debian: git (the target's revision, release tags),
# docker-compose (the e2e stage), node (syntax checks of Node.js services). First, so the layer
# is cached across rebuilds of the project.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git docker-compose nodejs ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY build/wheelhouse /wheelhouse
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheelhouse nexus-assets \
 && rm -rf /wheelhouse \
 && mkdir -p /opt/dagster/home /opt/nexus-assets \
 && chown 10001 /opt/dagster/home
WORKDIR /opt/nexus-assets
COPY definitions.py workspace.yaml ./
ENV PATH=/opt/venv/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    DAGSTER_HOME=/opt/dagster/home \
    NEXUS_WORKDIR=/opt/dagster/home/work
USER 10001
EXPOSE 4000 3000
HEALTHCHECK --interval=10s --timeout=5s --retries=5 CMD ["dagster", "api", "grpc-health-check", "-p", "4000"]
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-f", "definitions.py"]
