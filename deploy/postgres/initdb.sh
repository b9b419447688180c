#!/usr/bin/env bash
# Chimera's roles and database in the postgres image: deploy/docker-compose.yml mounts this file into
# /docker-entrypoint-initdb.d, which runs it once, on an empty data volume. It runs bootstrap.sql with the three
# roles' passwords read from the environment by psql's \getenv, so no password reaches a command line.
#
# Again on an existing volume (new passwords, or a newer bootstrap.sql, e.g. before migration 0010):
#   docker compose exec postgres bash /docker-entrypoint-initdb.d/10-chimera-roles.sh
# The body is a subshell: the image's entrypoint sources a script that is not executable, and neither `set`
# nor a failure may leak into it other than as this script's exit status.
(
  set -euo pipefail
  for var in CHIMERA_OWNER_PASSWORD CHIMERA_APP_PASSWORD CHIMERA_AUDITOR_PASSWORD; do
    if [ -z "${!var:-}" ]; then
      echo "chimera initdb: $var is empty: every Chimera role needs a password" >&2
      exit 1
    fi
  done
  {
    printf '%s\n' \
      '\getenv owner_password CHIMERA_OWNER_PASSWORD' \
      '\getenv app_password CHIMERA_APP_PASSWORD' \
      '\getenv auditor_password CHIMERA_AUDITOR_PASSWORD'
    cat "${CHIMERA_BOOTSTRAP_SQL:-/opt/chimera/bootstrap.sql}"
  } | psql -X -q -v ON_ERROR_STOP=1 --no-password --username "${POSTGRES_USER:-postgres}" --dbname postgres
)
