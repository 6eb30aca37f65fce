"""Dagster resources: one per outside thing the pipeline talks to."""

from nexus_assets.resources.config import NexusConfig
from nexus_assets.resources.docker_engine import DockerEngine, docker_client
from nexus_assets.resources.git import GitRepo

__all__ = ["DockerEngine", "GitRepo", "NexusConfig", "docker_client"]
