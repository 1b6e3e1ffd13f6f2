# Sourced by hack/build-*.sh: a long first build says it is alive.
#
# with_progress LABEL CMD...   run CMD; every PROGRESS_SECONDS (30) print "still LABEL"
#                              with the time so far to stderr, then how long it took.
#                              A cold `go build` of kube-apiserver is minutes of silence.

with_progress() {
  local label=$1 start=$SECONDS heartbeat status
  shift
  (
    while sleep "${PROGRESS_SECONDS:-30}"; do
      echo "    still $label ($((SECONDS - start)) s)" >&2
    done
  ) &
  heartbeat=$!
  status=0
  "$@" || status=$?
  kill "$heartbeat" 2>/dev/null
  wait "$heartbeat" 2>/dev/null || true
  if [ "$status" -eq 0 ]; then
    echo "    $label: done in $((SECONDS - start)) s" >&2
  fi
  return "$status"
}
