#!/usr/bin/env bash
# The workflow's pipeline step: the README's `bash scripts/run.sh`, as root, on the target that
# the repository variable NEXUS_COS_REPOSITORY names (checked out beside this project as
# nexus-cos/), else on the bundled sample. Writes the step's outputs (GITHUB_OUTPUT) for the
# artifact uploads; the run itself writes the step summary (nexus_assets/automation/notify.py).
#
# Settings, from the workflow's inputs and the repository's secrets and variables:
#   VERSION                      release version (empty: the next patch)
#   DEPLOY_STAGING=true          also deploy to staging, with the secrets STAGING_HOST (user@host[:port]),
#                                STAGING_SSH_KEY, STAGING_KNOWN_HOSTS and STAGING_ENV (the host's .env)
#   REGISTRY, REGISTRY_USERNAME, REGISTRY_PASSWORD, DOCKER_REGISTRY_TOKEN   (empty: the runner's local registry)
#   NEXUS_COS_REPOSITORY, NEXUS_COS_TOKEN   the target on GitHub (owner/name) and a token that may push
#                                its tags and make its releases: the GitHub Release is made there
#   SLACK_WEBHOOK_URL            Slack messages from the run
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then exec sudo --preserve-env env "PATH=$PATH" bash "$0" "$@"; fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
say() { printf '[ci] %s\n' "$*"; }
output() { if [ -n "${GITHUB_OUTPUT:-}" ]; then printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"; fi; }
summary() { if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then printf '%s\n' "$@" >>"$GITHUB_STEP_SUMMARY"; fi; }

# A secret or variable that is not set reaches us as an empty string: the same as unset here.
for name in VERSION REGISTRY REGISTRY_USERNAME REGISTRY_PASSWORD DOCKER_REGISTRY_TOKEN NEXUS_COS_REPOSITORY \
            NEXUS_COS_TOKEN SLACK_WEBHOOK_URL STAGING_HOST STAGING_SSH_KEY STAGING_KNOWN_HOSTS STAGING_ENV; do
  [ -n "${!name:-}" ] || unset "$name"
done
TEMP="${RUNNER_TEMP:-/tmp}"
export NEXUS_WORKDIR="${NEXUS_WORKDIR:-$TEMP/nexus_agent}"
args=(--summary "$TEMP/nexus-run-summary.json")

target="${GITHUB_WORKSPACE:-$PWD}/nexus-cos"
if [ -n "${NEXUS_COS_REPOSITORY:-}" ]; then
  [ -d "$target/.git" ] || { say "error: NEXUS_COS_REPOSITORY is set but $target is no git checkout"; exit 2; }
  export NEXUS_REPO="$target"
  # The release commit and tag go back to the target's GitHub repository, and the GitHub Release
  # is made there through its REST API (release/github.py), with the target's token.
  export NEXUS_RELEASE_PUSH=origin GITHUB_REPOSITORY="$NEXUS_COS_REPOSITORY"
  if [ -n "${NEXUS_COS_TOKEN:-}" ]; then export GITHUB_TOKEN="$NEXUS_COS_TOKEN"; fi
  say "target: $NEXUS_COS_REPOSITORY ($target)"
else
  # The bundled sample's commits are on no GitHub repository: the release stays a local folder
  # (uploaded with the artifacts), and no GitHub Release is attempted.
  unset GITHUB_TOKEN NEXUS_REPO
  say "target: the bundled sample (set the repository variable NEXUS_COS_REPOSITORY to build yours)"
fi
unset NEXUS_COS_TOKEN

if [ "${DEPLOY_STAGING:-false}" = true ]; then
  for name in STAGING_HOST STAGING_SSH_KEY STAGING_KNOWN_HOSTS; do
    [ -n "${!name:-}" ] || { say "error: deploy_staging needs the repository secret $name"; exit 2; }
  done
  secrets="$TEMP/nexus-staging"; (umask 077; mkdir -p "$secrets")
  (umask 077; printf '%s\n' "$STAGING_SSH_KEY" >"$secrets/id_key"; printf '%s\n' "$STAGING_KNOWN_HOSTS" >"$secrets/known_hosts")
  export NEXUS_STAGING_HOST="$STAGING_HOST" NEXUS_STAGING_SSH_KEY="$secrets/id_key" \
         NEXUS_STAGING_KNOWN_HOSTS="$secrets/known_hosts"
  if [ -n "${STAGING_ENV:-}" ]; then
    (umask 077; printf '%s\n' "$STAGING_ENV" >"$secrets/env")
    export NEXUS_STAGING_ENV_FILE="$secrets/env"
  fi
  args+=(--deploy-staging)
fi
unset STAGING_SSH_KEY STAGING_KNOWN_HOSTS STAGING_ENV

summary_size() { if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f "$GITHUB_STEP_SUMMARY" ]; then wc -c <"$GITHUB_STEP_SUMMARY"; else echo 0; fi; }
before="$(summary_size)"
log="$TEMP/nexus-agent.log"
status=0
bash "$ROOT/scripts/run.sh" "${args[@]}" 2>&1 | tee "$log" || status=${PIPESTATUS[0]}

output workdir "$NEXUS_WORKDIR"
output reports "$NEXUS_WORKDIR/reports"
output artifacts "$NEXUS_WORKDIR/artifacts"
output exit_code "$status"
record="$NEXUS_WORKDIR/artifacts/verified_release.json"
if [ -f "$record" ]; then
  "$ROOT/.venv/bin/python" - "$record" "${GITHUB_OUTPUT:-/dev/null}" <<'PY'
import json, sys
record = json.load(open(sys.argv[1]))
with open(sys.argv[2], "a") as out:
    out.write(f"version={record.get('version') or ''}\ntag={record.get('tag') or ''}\n")
    out.write(f"released={'true' if record.get('made') else 'false'}\n")
    out.write(f"release_folder={record.get('folder') or ''}\ngithub_release={(record.get('github') or {}).get('url') or ''}\n")
PY
fi
if [ "$(summary_size)" = "$before" ]; then  # no Dagster run to summarize (bad input, nothing changed)
  summary "### Pipeline" "" "nexus-agent exited $status without a run to summarize:" "" '```' "$(tail -n 5 "$log")" '```' ""
fi
exit "$status"
