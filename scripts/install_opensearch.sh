#!/usr/bin/env bash
# Assemble OpenSearch (a node: its server jar and runtime jars, log4j-core, and the
# transport-netty4 and analysis-common modules) from Maven Central into .opensearch/,
# for the search-server tests. OpenSearch 2.19.6: the newest line that runs on Java 17.
# Usage: scripts/install_opensearch.sh      (prints the folder)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
VERSION=2.19.6
DIR=.opensearch
fetch_once "$DIR/lib" "opensearch-$VERSION" "opensearch $VERSION" \
  "org.opensearch:opensearch:$VERSION" "org.opensearch:opensearch-plugin-classloader:$VERSION" \
  "org.apache.logging.log4j:log4j-core:2.25.4"
fetch_once "$DIR/modules/transport-netty4" "transport-netty4-$VERSION" "transport-netty4" \
  "org.opensearch.plugin:transport-netty4-client:$VERSION"
fetch_once "$DIR/modules/analysis-common" "analysis-common-$VERSION" "analysis-common" \
  "org.opensearch.plugin:analysis-common:$VERSION"
# A module is its jars and a descriptor (the distribution's zip carries these; Maven's jars
# do not), and netty's grants under OpenSearch's security manager.
descriptor() {
  cat > "$DIR/modules/$1/plugin-descriptor.properties" <<PROPS
description=$3
version=$VERSION
name=$1
classname=$2
java.version=11
opensearch.version=$VERSION
extended.plugins=
has.native.controller=false
PROPS
}
descriptor transport-netty4 org.opensearch.transport.Netty4Plugin "Netty 4 transport"
descriptor analysis-common org.opensearch.analysis.common.CommonAnalysisPlugin "Analyzers"
cat > "$DIR/modules/transport-netty4/plugin-security.policy" <<'POLICY'
grant codeBase "${codebase.netty-common}" {
  permission java.io.FilePermission "/proc/sys/net/core/somaxconn", "read";
  permission java.net.SocketPermission "*", "accept,connect";
  permission java.lang.RuntimePermission "*", "setContextClassLoader";
};
grant codeBase "${codebase.netty-transport}" {
  permission java.util.PropertyPermission "sun.nio.ch.bugLevel", "write";
};
POLICY
echo "$DIR"
