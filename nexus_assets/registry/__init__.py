"""The image registry: `client` (the one client of the Registry HTTP API v2: credentials,
retries, error classes, manifests) and `released` (a released version's manifest, its registry
tags, their repair). Shared by images, publish, release, deploy and the CLI; imports only core."""
