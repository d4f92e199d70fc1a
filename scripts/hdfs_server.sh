#!/usr/bin/env bash
# Start or stop a real HDFS (Hadoop's MiniDFSCluster: a NameNode and a DataNode in one JVM)
# on 127.0.0.1, for the tests.
#   scripts/hdfs_server.sh start DIR PORT    keep its blocks under DIR; prints the URI of its
#                                            file system (hdfs://127.0.0.1:PORT)
#   scripts/hdfs_server.sh stop DIR
set -euo pipefail
source "$(dirname "$0")/lib.sh"
server_action "$@"
JARS=$(bash "$ROOT/scripts/install_hdfs.sh")
rm -f "$DIR/ready.xml"
# The NameNode's web port is picked free by the cluster; -writeConfig says it is up.
(cd "$DIR" && exec java -Xmx512m -Dtest.build.data="$DIR/data" -cp "$ROOT/$JARS/*" \
  org.apache.hadoop.mapreduce.MiniHadoopClusterManager -nomr -format \
  -nnport "$PORT" -nnhttpport 0 -writeConfig "$DIR/ready.xml") > "$DIR/server.log" 2>&1 &
echo $! > "$DIR/server.pid"
wait_started "$DIR" HDFS test -f "$DIR/ready.xml"
echo "hdfs://127.0.0.1:$PORT"
