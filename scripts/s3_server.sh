#!/usr/bin/env bash
# Start or stop an S3-compatible server (S3Proxy on its filesystem backend) on 127.0.0.1.
#   scripts/s3_server.sh start DIR PORT    serve the buckets (folders) of DIR/data; prints
#                                          the environment a client needs, one VAR=value a line
#   scripts/s3_server.sh stop DIR
# Access key poiflow, secret poiflow-secret; the tests start and stop it themselves.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
server_action "$@"
JAR="$ROOT/$(bash "$ROOT/scripts/install_s3proxy.sh")"
mkdir -p "$DIR/data"
cat > "$DIR/s3proxy.conf" <<CONF
s3proxy.endpoint=http://127.0.0.1:$PORT
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=poiflow
s3proxy.credential=poiflow-secret
jclouds.provider=filesystem
jclouds.filesystem.basedir=$DIR/data
CONF
java -jar "$JAR" --properties "$DIR/s3proxy.conf" > "$DIR/server.log" 2>&1 &
echo $! > "$DIR/server.pid"
wait_started "$DIR" S3Proxy curl -s -o /dev/null "http://127.0.0.1:$PORT/"
echo "AWS_ENDPOINT_URL=http://127.0.0.1:$PORT"
echo "AWS_ACCESS_KEY_ID=poiflow"
echo "AWS_SECRET_ACCESS_KEY=poiflow-secret"
echo "AWS_REGION=us-east-1"
