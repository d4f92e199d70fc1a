#!/usr/bin/env bash
# Start or stop a real OpenSearch (one node, assembled from Maven Central's jars) on
# 127.0.0.1, for the tests and for trying `poiflow publish search --opensearch` by hand.
#   scripts/opensearch_server.sh start DIR PORT   keep its data under DIR; HTTP on PORT (the
#                                                 node's transport on PORT+1); prints its URL
#   scripts/opensearch_server.sh stop DIR
set -euo pipefail
source "$(dirname "$0")/lib.sh"
server_action "$@"
HOME_DIR="$ROOT/$(bash "$ROOT/scripts/install_opensearch.sh")"
mkdir -p "$DIR/config" "$DIR/data" "$DIR/logs" "$DIR/tmp"
cat > "$DIR/config/opensearch.yml" <<YAML
cluster.name: poiflow
node.name: poiflow-test
path.data: $DIR/data
path.logs: $DIR/logs
network.host: 127.0.0.1
http.port: $PORT
transport.port: $((PORT + 1))
discovery.type: single-node
YAML
cat > "$DIR/config/log4j2.properties" <<'PROPS'
status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] %m%n
rootLogger.level = warn
rootLogger.appenderRef.console.ref = console
logger.node.name = org.opensearch.node.Node
logger.node.level = info
PROPS
# OpenSearch refuses to run as root, which it finds out through JNA's native library:
# without the library (not unpacked, none on the system) it runs, with the native
# extras (memory locking, system-call filters) off; a test node needs neither.
(cd "$DIR" && exec java -Xms512m -Xmx512m -XX:+ExitOnOutOfMemoryError \
  -Djna.nosys=true -Djna.nounpack=true -Djna.boot.library.path=/nonexistent \
  -Dopensearch.path.home="$HOME_DIR" -Dopensearch.path.conf="$DIR/config" \
  -Dopensearch.distribution.type=tar -Dopensearch.bundled_jdk=false \
  -Dlog4j2.disable.jmx=true -Djava.io.tmpdir="$DIR/tmp" -cp "$HOME_DIR/lib/*" \
  org.opensearch.bootstrap.OpenSearch) > "$DIR/server.log" 2>&1 &
echo $! > "$DIR/server.pid"
wait_started "$DIR" OpenSearch curl -sf -o /dev/null "http://127.0.0.1:$PORT/_cluster/health?wait_for_status=yellow&timeout=1s"
echo "http://127.0.0.1:$PORT"
