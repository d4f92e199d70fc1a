# Shell functions the install and server scripts share (source it; it defines, runs nothing).

# The Hadoop version PySpark ships (its hadoop-client-api jar), 3.5.0 if PySpark is absent.
hadoop_version() {
  local found
  found=$(ls .venv/lib/python3*/site-packages/pyspark/jars/hadoop-client-api-*.jar 2>/dev/null \
    | sed -E 's/.*hadoop-client-api-(.*)\.jar/\1/' | head -1)
  echo "${found:-3.5.0}"
}

# fetch_jars DIR GROUP:ARTIFACT:VERSION...: the artifacts and their runtime dependencies
# from Maven Central into DIR (replaced whole).
fetch_jars() {
  local dir=$1 work deps="" spec group artifact version
  shift
  case "$dir" in /*) ;; *) dir="$(pwd)/$dir" ;; esac
  for spec in "$@"; do
    IFS=: read -r group artifact version <<<"$spec"
    deps+="<dependency><groupId>$group</groupId><artifactId>$artifact</artifactId>"
    deps+="<version>$version</version></dependency>"
  done
  work=$(mktemp -d)
  cat > "$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>poiflow</groupId><artifactId>fetched-jars</artifactId><version>1</version>
  <dependencies>$deps</dependencies>
</project>
POM
  rm -rf "$dir"
  mvn -q -f "$work/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$dir" >&2
  rm -rf "$work"
}

# stop_server DIR: stop the server whose pid a start left in DIR/server.pid.
stop_server() {
  if [ -f "$1/server.pid" ]; then
    kill "$(cat "$1/server.pid")" 2>/dev/null || true
    rm -f "$1/server.pid"
  fi
}

# fetch_once DIR STAMP WHAT GROUP:ARTIFACT:VERSION...: fetch_jars into DIR unless DIR/.STAMP
# says it was done; WHAT names the download in the one line it prints when it fetches.
fetch_once() {
  local dir=$1 stamp=$2 what=$3
  shift 3
  if [ ! -f "$dir/.$stamp" ]; then
    echo "fetching $what into $dir (once)" >&2
    fetch_jars "$dir" "$@"
    touch "$dir/.$stamp"
  fi
}

# wait_started DIR NAME CHECK...: wait (up to a minute or two) until the command CHECK
# succeeds, while the server whose pid is in DIR/server.pid lives; else print the end of
# DIR/server.log and fail.
wait_started() {
  local dir=$1 name=$2
  shift 2
  for _ in $(seq 1 600); do
    if "$@" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$(cat "$dir/server.pid")" 2>/dev/null; then
      break
    fi
    sleep 0.2
  done
  echo "$name did not start; its log: $dir/server.log" >&2
  tail -n 40 "$dir/server.log" >&2
  return 1
}

# server_action "$@": the command line of a server script. "stop DIR" stops the server in
# DIR and exits; anything but "start DIR PORT" prints the usage and exits; "start DIR PORT"
# creates DIR and sets DIR (now absolute), PORT and ROOT (the project's folder) for the
# script to start its server with.
server_action() {
  case "${1:-}" in
    start)
      if [ $# -eq 3 ]; then
        mkdir -p "$2"
        DIR=$(cd "$2" && pwd)
        PORT=$3
        ROOT="$(cd "$(dirname "$0")/.." && pwd)"
        return 0
      fi
      ;;
    stop)
      if [ $# -eq 2 ]; then
        stop_server "$2"
        exit 0
      fi
      ;;
  esac
  echo "usage: $0 start DIR PORT | stop DIR" >&2
  exit 2
}
