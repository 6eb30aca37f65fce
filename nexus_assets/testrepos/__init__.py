"""Generated target repositories for this project's own tests and benchmarks, never imported by
the pipeline: `synthetic` (monorepos of any size), `realistic` (shaped like the real platform,
with real lockfiles in `realistic_deps/`) and `realistic_compose` (services that run only as
compose runs them)."""
