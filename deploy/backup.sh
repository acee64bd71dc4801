#!/bin/sh
# Back up the portal's database, with the audit chain's head it contains and the audit digests
# published so far. Run from the repository root, daily, by cron or a systemd timer:
#
#     deploy/backup.sh /var/backups/five-safes-portal
#
# Then copy the directory off this host (restic, rsync, your TRE's backup service): a backup kept
# only beside the system it protects protects nothing. Files in object storage are protected by
# bucket versioning and replication instead (docs/deploy.md, "Backups"). Test every few weeks that
# a dump restores: deploy/restore-test.sh.
set -eu

dest=${1:?usage: deploy/backup.sh DIRECTORY}
keep_days=${BACKUP_KEEP_DAYS:-35}
env_file=${ENV_FILE:-deploy/.env}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
base="$dest/portal-$stamp"
umask 077
mkdir -p "$dest"

compose() {
  docker compose --env-file "$env_file" "$@"
}

# 1. The database, in pg_dump's custom format (compressed; pg_restore can restore any part of it).
compose exec -T postgres pg_dump --username=portal --dbname=portal --format=custom > "$base.dump.partial"
# A dump that pg_restore cannot read is no backup: check it before keeping it.
compose exec -T postgres pg_restore --list < "$base.dump.partial" > /dev/null
mv "$base.dump.partial" "$base.dump"

# 2. The audit chain as the dump holds it (verify_audit fails, and so does this backup, if the chain
#    is broken: find out why before backing up over good copies).
compose exec -T web python manage.py verify_audit > "$base.audit-head.txt"

# 3. The digests the portal has published: after a restore, deploy/check_audit_digests.py proves the
#    restored trail is the one the public saw.
domain=$(sed -n 's/^PORTAL_DOMAIN=//p' "$env_file" | tr -d "\"'")
curl --fail --silent --show-error "https://$domain/public/audit/digests.json" > "$base.audit-digests.json"

# 4. Retention.
find "$dest" -name 'portal-*' -type f -mtime "+$keep_days" -delete

echo "Backed up to $base.*"
