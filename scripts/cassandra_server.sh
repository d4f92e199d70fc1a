#!/usr/bin/env bash
# Start or stop a real Apache Cassandra (one node, from Maven Central's jars) on 127.0.0.1,
# for the tests and for trying `poiflow publish store` by hand.
#   scripts/cassandra_server.sh start DIR PORT   keep its data under DIR; CQL on PORT (the
#                                                node's own port is PORT+1); prints host:port
#   scripts/cassandra_server.sh stop DIR
set -euo pipefail
source "$(dirname "$0")/lib.sh"
server_action "$@"
JARS=$(bash "$ROOT/scripts/install_cassandra.sh")
cat > "$DIR/cassandra.yaml" <<YAML
cluster_name: poiflow
num_tokens: 1
initial_token: 0
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_directory: $DIR/commitlog
data_file_directories: [$DIR/data]
saved_caches_directory: $DIR/saved_caches
hints_directory: $DIR/hints
cdc_raw_directory: $DIR/cdc
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:$((PORT + 1))"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: $((PORT + 1))
native_transport_port: $PORT
start_native_transport: true
endpoint_snitch: SimpleSnitch
YAML
cat > "$DIR/logback.xml" <<'XML'
<configuration>
  <appender name="OUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{HH:mm:ss.SSS} %-5level %logger{36} - %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="OUT"/></root>
  <logger name="org.apache.cassandra.service.CassandraDaemon" level="INFO"/>
  <logger name="org.apache.cassandra.transport" level="INFO"/>
</configuration>
XML
# Java 17 needs Cassandra's module openings (its own jvm17-server.options).
OPENS=()
for spec in java.base/jdk.internal.misc java.base/jdk.internal.ref java.base/sun.nio.ch \
  java.management.rmi/com.sun.jmx.remote.internal.rmi java.rmi/sun.rmi.registry \
  java.rmi/sun.rmi.server java.sql/java.sql; do
  OPENS+=(--add-exports "$spec=ALL-UNNAMED")
done
for spec in java.base/java.lang.module java.base/jdk.internal.loader java.base/jdk.internal.ref \
  java.base/jdk.internal.reflect java.base/jdk.internal.math java.base/jdk.internal.module \
  java.base/jdk.internal.util.jar jdk.management/com.sun.management.internal \
  java.base/java.io java.base/java.nio java.base/sun.nio.ch java.base/java.lang \
  java.base/java.util java.base/java.util.concurrent java.base/java.util.concurrent.atomic \
  java.base/java.lang.reflect; do
  OPENS+=(--add-opens "$spec=ALL-UNNAMED")
done
(cd "$DIR" && exec java -Xms256m -Xmx1g -XX:+ExitOnOutOfMemoryError "${OPENS[@]}" \
  -Djdk.attach.allowAttachSelf=true -Dcassandra.config="file://$DIR/cassandra.yaml" \
  -Dlogback.configurationFile="$DIR/logback.xml" -Dcassandra-foreground=yes \
  -Dcassandra.storagedir="$DIR" -Dcassandra.skip_wait_for_gossip_to_settle=0 \
  -Dcassandra.ring_delay_ms=100 -Dcassandra.jmx.local.port=0 -cp "$ROOT/$JARS/*" \
  org.apache.cassandra.service.CassandraDaemon) > "$DIR/server.log" 2>&1 &
echo $! > "$DIR/server.pid"
wait_started "$DIR" Cassandra grep -q "Startup complete" "$DIR/server.log"
echo "127.0.0.1:$PORT"
