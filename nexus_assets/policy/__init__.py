"""The operator guide's policies, one module each, shared by the stages that apply them
(imported by any stage; it imports only core and target):

- `pmmg`: Special Handling of N3XUS-SYSTEM-PMMG: the ownership lock in
  CANONICAL_RATIFICATION_INDEX.md, which modules belong to PMMG, and the verdict the
  compliance report and its blocking checks show; `pmmg_images` decides whether an image
  containerizes PMMG execution logic (from its Dockerfile, entrypoint/command, history and
  files), `pmmg_jobs` whether a transcoding job is scheduled for PMMG assets;
- `acceptance`: the Acceptance Gates' rules that are not a test stage of their own: a service
  with no tests (`[tests] no_tests` in nexus-agent.toml), a skipped e2e, and whether the
  compliance report holds every section and every gate with its evidence;
- `secret_scan`: no output file holds a secret of the repository (the compliance report's count,
  the deployment package's refusal);
- `waivers`: `[release] waive`, a failing service left out of the release on the record;
- `scaffolding`: which missing modules of the parity report scaffolding may create."""
