#!/bin/sh
# Creates the bucket (a directory under /data) and serves /data over S3 on :9000.
# The health check (compose.yaml) runs `zombi-s3 check`: it lists the bucket with the same keys.
set -eu
: "${S3_ACCESS_KEY:?S3_ACCESS_KEY is not set}"
: "${S3_SECRET_KEY:?S3_SECRET_KEY is not set}"
: "${S3_BUCKET:?S3_BUCKET is not set}"
if [ "${1:-serve}" = check ]; then
    exec rclone lsf --max-depth 1 --contimeout 2s --timeout 5s --low-level-retries 1 --retries 1 \
        ":s3,provider=Other,endpoint='http://127.0.0.1:9000',access_key_id='$S3_ACCESS_KEY',secret_access_key='$S3_SECRET_KEY':$S3_BUCKET" >/dev/null
fi
mkdir -p "/data/$S3_BUCKET"
exec rclone serve s3 --addr :9000 --auth-key "$S3_ACCESS_KEY,$S3_SECRET_KEY" /data
