#!/usr/bin/env bash
# Start or stop a real Apache Kafka broker (KRaft mode: broker and controller in one JVM,
# no ZooKeeper; Maven Central's jars) on 127.0.0.1, for the tests and for trying streaming.
#   scripts/kafka_server.sh start DIR PORT   keep its log under DIR; clients on PORT, the
#                                            controller on PORT+1; prints host:port
#   scripts/kafka_server.sh stop DIR
set -euo pipefail
source "$(dirname "$0")/lib.sh"
server_action "$@"
LIBS="$ROOT/$(bash "$ROOT/scripts/install_kafka.sh")"
cat > "$DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$((PORT + 1))
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$((PORT + 1))
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$DIR/data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
num.partitions=1
PROPS
cat > "$DIR/log4j2.properties" <<'PROPS'
status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.console.ref = console
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
PROPS
JAVA=(java -Dlog4j2.configurationFile="$DIR/log4j2.properties" -cp "$LIBS/*")
if [ ! -f "$DIR/data/meta.properties" ]; then  # a new broker: format its storage once
  CLUSTER=$("${JAVA[@]}" kafka.tools.StorageTool random-uuid | tail -n 1)
  "${JAVA[@]}" kafka.tools.StorageTool format -t "$CLUSTER" -c "$DIR/server.properties" \
    > "$DIR/format.log" 2>&1
fi
(cd "$DIR" && exec "${JAVA[0]}" -Xms256m -Xmx512m -XX:+ExitOnOutOfMemoryError "${JAVA[@]:1}" \
  kafka.Kafka "$DIR/server.properties") > "$DIR/server.log" 2>&1 &
echo $! > "$DIR/server.pid"
wait_started "$DIR" Kafka grep -q "Kafka Server started" "$DIR/server.log"
echo "127.0.0.1:$PORT"
