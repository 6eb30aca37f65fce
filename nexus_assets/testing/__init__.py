"""What the pipeline's test stages share (images' unit and integration checks, verify's lint and
e2e): `stage` (a stage's result record and bookkeeping: log, clock, containers to remove) and
`cleanup` (the labels on every container and network a step creates, and the removal of what a
killed run left). Imports core and target."""
