#!/bin/sh
# One-shot set-up of MinIO for the portal (compose service "createbucket"); safe to run again.
#
# Creates the bucket private and versioned, and the portal's own S3 user (s3_access_key_id /
# s3_secret_access_key) with a policy that allows that one bucket. The root credentials stay with
# this job and MinIO. Run again after changing s3_secret_access_key to rotate it.
set -eu

bucket=${BUCKET:?BUCKET is not set}
root_user=$(cat /run/secrets/minio_root_user)
root_password=$(cat /run/secrets/minio_root_password)
portal_key=$(cat /run/secrets/s3_access_key_id)
portal_secret=$(cat /run/secrets/s3_secret_access_key)
# An alias given in the environment keeps the root password off the command line.
export MC_HOST_store="http://${root_user}:${root_password}@minio:9000"

tries=0
until mc ready store >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "MinIO did not become ready" >&2
    exit 1
  fi
  sleep 2
done

mc mb --ignore-existing "store/${bucket}"
mc anonymous set none "store/${bucket}"
# Every overwritten or deleted object keeps its earlier versions (see docs/deploy.md, "Backups").
mc version enable "store/${bucket}"

policy=$(mktemp)
cat > "$policy" <<POLICY
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
      "Resource": ["arn:aws:s3:::${bucket}"]
    },
    {
      "Effect": "Allow",
      "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                 "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
      "Resource": ["arn:aws:s3:::${bucket}/*"]
    }
  ]
}
POLICY
mc admin policy create store portal-files "$policy"
rm -f "$policy"
mc admin user add store "$portal_key" "$portal_secret"
mc admin policy attach store portal-files --user "$portal_key" 2>/dev/null \
  || mc admin policy entities store --user "$portal_key" | grep -q portal-files
echo "Bucket ${bucket} is ready for ${portal_key}."
