"""The target repository as the pipeline reads it, shared by every stage and by core's record
reader: its `nexus-agent.toml` (`repo_config`), its services (`services`: compose first, folders
second; `compose_model` and `compose_runtime`: what compose builds and how it runs a service),
its Dockerfiles (`dockerfile`) and base images (`baseimages`, with the base-image map
`base_images.toml`), and its secrets (`secrets`: `.env*` files and masking; `secrets_rule`: what
is secret, what is public configuration). It imports only core."""
