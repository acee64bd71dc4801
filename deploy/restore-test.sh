#!/bin/sh
# Prove that a backup restores: load a dump into a throw-away PostgreSQL (a separate compose project,
# with its own volumes and network; the running portal is not touched), verify the audit chain, and
# check it against the audit digests archived with the dump. Run from the repository root:
#
#     deploy/restore-test.sh /var/backups/five-safes-portal/portal-20260101T020000Z.dump
#
# Exit status 0 when the restored database is sound and matches every archived digest.
set -eu

dump=${1:?usage: deploy/restore-test.sh PORTAL-STAMP.dump [DIGESTS.json]}
digests=${2:-${dump%.dump}.audit-digests.json}
env_file=${ENV_FILE:-deploy/.env}
project=five-safes-restore-test

compose() {
  docker compose --project-name "$project" --env-file "$env_file" "$@"
}
cleanup() {
  compose down --volumes --remove-orphans >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

compose up --detach --wait postgres
compose exec -T postgres pg_restore --username=portal --dbname=portal --no-owner --exit-on-error < "$dump"
echo "Restored $dump."

# The portal image against the restored database: the chain is intact and matches the digests.
compose run --rm --no-deps -T migrate python manage.py verify_audit
if [ -f "$digests" ]; then
  compose run --rm --no-deps -T migrate python deploy/check_audit_digests.py - < "$digests"
else
  echo "No archived digests at $digests: the chain was verified, but not against what was published." >&2
  exit 3
fi
