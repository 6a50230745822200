#!/bin/sh
# Serves /data over S3 on :9000 with SeaweedFS (`weed mini`), with one identity (the keys
# S3_ACCESS_KEY and S3_SECRET_KEY) and the bucket $S3_BUCKET, created once every part of
# weed is up. The health check (compose.yaml) runs `zombi-s3 check`: a signed request
# (SigV4, by curl) that lists the bucket, so it fails until keys and bucket both work.
set -eu
: "${S3_ACCESS_KEY:?S3_ACCESS_KEY is not set}"
: "${S3_SECRET_KEY:?S3_SECRET_KEY is not set}"
: "${S3_BUCKET:?S3_BUCKET is not set}"
if [ "${1:-serve}" = check ]; then
    exec curl -fsS -o /dev/null --max-time 5 --aws-sigv4 aws:amz:us-east-1:s3 \
        --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
        "http://127.0.0.1:9000/$S3_BUCKET?list-type=2&max-keys=1"
fi
case "$S3_ACCESS_KEY$S3_SECRET_KEY" in
    *'"'* | *'\'*) echo "S3_ACCESS_KEY and S3_SECRET_KEY must not hold \" or \\" >&2; exit 1 ;;
esac
mkdir -p /data/weed /data/config
umask 077
printf '{"identities":[{"name":"zombi","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}\n' \
    "$S3_ACCESS_KEY" "$S3_SECRET_KEY" > /data/config/s3.json
# A killed weed leaves its gRPC sockets behind (fixed names in /tmp).
rm -f /tmp/seaweedfs-*.sock
# S3 on :9000; weed's other parts on their default ports (master 9333, volume 9340, filer
# 8888, admin 23646, and their gRPC ports 10000 above), which answer without credentials
# on the compose network and are not published. No telemetry, no admin web pages, no
# Iceberg, Lance or WebDAV servers. A PUT to a missing bucket fails, as on S3. weed reads
# credentials and buckets from AWS_*, S3_* and WEED_* variables too: it gets none.
exec env -u S3_ACCESS_KEY -u S3_SECRET_KEY -u S3_BUCKET \
    weed -logtostderr -config_dir=/data/config mini \
    -dir=/data/weed -ip=127.0.0.1 -ip.bind=0.0.0.0 \
    -s3.port=9000 -s3.port.iceberg=0 -s3.port.lance=0 -webdav=false -admin.ui=false \
    -master.telemetry=false -s3.config=/data/config/s3.json \
    -bucket="$S3_BUCKET" -s3.autoCreateBucket=false
