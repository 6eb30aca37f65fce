"""One small exception family: every message names the file, line, service or host
that is wrong and what to do, and never a secret value."""

from __future__ import annotations


class NexusError(Exception):
    """Base of every error nexus-assets raises on purpose."""


class ConfigError(NexusError):
    """Bad flags, environment or configuration."""


class TargetRepoError(NexusError):
    """The target repository is missing or not shaped like a Nexus COS monorepo."""


class InputError(NexusError):
    """A file in the target repository cannot be used; names the file and line."""


class EngineError(NexusError):
    """The Docker engine is unreachable or refused an operation."""


class BuildError(NexusError):
    """One service's image could not be built; names the service."""


class ReportError(NexusError):
    """A report the pipeline produced does not match its model (schemas/); names the report
    and the field."""
