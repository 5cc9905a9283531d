#!/usr/bin/env bash
# Builds the pinned test binaries (kube-apiserver, kube-controller-manager, kubectl, etcd, helm, cnitool)
# from the Go module proxy into a cache outside the work tree. Called by `make testbin` (mk/apiserver.mk),
# which `make test` runs before pytest.
#
# Invariants:
# - The cache directory is keyed by a hash of every tests/tools/*/go.mod + go.sum, the Go version and
#   RECIPE below: a changed pin builds into a new directory, an unchanged one is reused without running go.
# - A module's binaries appear in <cache>/bin only after all of them built (built in a temp dir, then
#   renamed), and <cache>/.done.<module> records it, so an interrupted build resumes with the missing modules.
# - Concurrent callers (several checkouts on one machine) serialise on a lock file per cache directory.
# - tests/tools/bin (git-ignored) and <root>/current are symlinks to the built bin directory; the pytest
#   fixtures find the binaries there (or wherever $EGW_TESTBIN points).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=${EGW_TESTBIN_ROOT:-$HOME/.cache/egw/testbin}
# Bump when the build commands below change in a way that changes the binaries.
RECIPE=1

command -v go >/dev/null || { echo "testbin: the Go toolchain (go >= 1.26) is needed to build the test binaries" >&2; exit 1; }
export GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:+$GOFLAGS }-trimpath -buildvcs=false -mod=readonly"

hash=$({ echo "recipe $RECIPE"; go version; for f in "$here"/*/go.mod "$here"/*/go.sum; do echo "== ${f#"$here"/}"; cat "$f"; done; } \
       | sha256sum | cut -c1-16)
dir=$root/$hash
mkdir -p "$dir/bin"
exec 9>"$dir.lock"
flock 9

# Version of a required module as pinned in a wrapper's go.mod (`go list -m` reads only go.mod/go.sum).
modver() { (cd "$here/$1" && go list -m -f '{{.Version}}' "$2"); }

# heartbeat <pid> <what>: wait for a build, printing a line a minute so CI logs show it is alive.
heartbeat() {
  local pid=$1 what=$2 t0=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && echo ">> testbin:   still building $what ($((SECONDS - t0)) s)"
  done
  wait "$pid"
}

# build <module dir> <binary>=<package>... [-- extra ldflags]
build() {
  local mod=$1; shift
  local ldflags="-s -w" targets=()
  while [ $# -gt 0 ]; do
    if [ "$1" = -- ]; then shift; ldflags="$ldflags $*"; break; fi
    targets+=("$1"); shift
  done
  if [ -e "$dir/.done.$mod" ]; then
    echo ">> testbin: $mod already built in $dir/bin"
    return
  fi
  local tmp start t
  tmp=$(mktemp -d "$dir/tmp.$mod.XXXXXX")
  start=$SECONDS
  for t in "${targets[@]}"; do
    echo ">> testbin: building ${t%%=*} (${t#*=})"
    (cd "$here/$mod" && exec go build -ldflags "$ldflags" -o "$tmp/${t%%=*}" "${t#*=}") &
    heartbeat $! "${t%%=*}"
  done
  for t in "${targets[@]}"; do mv -f "$tmp/${t%%=*}" "$dir/bin/${t%%=*}"; done
  rmdir "$tmp"
  touch "$dir/.done.$mod"
  echo ">> testbin: $mod built in $((SECONDS - start)) s"
}

[ -e "$dir/.done.kube" ] || echo ">> testbin: a cold build takes 13-30 minutes on 2 cores (Go build cache: $(go env GOCACHE))"
kver=$(modver kube k8s.io/kubernetes)
kminor=${kver#v1.}; kminor=${kminor%%.*}
kld=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kld="$kld -X $p.gitVersion=$kver -X $p.gitMajor=1 -X $p.gitMinor=$kminor -X $p.gitTreeState=clean"
  kld="$kld -X $p.buildDate=1970-01-01T00:00:00Z"
done
build kube kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
  kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
  kubectl=k8s.io/kubernetes/cmd/kubectl -- "$kld"
build etcd etcd=go.etcd.io/etcd/server/v3
build helm helm=helm.sh/helm/v3/cmd/helm -- "-X helm.sh/helm/v3/internal/version.version=$(modver helm helm.sh/helm/v3)"
build cnitool cnitool=github.com/containernetworking/cni/cnitool

ln -sfn "$dir/bin" "$here/bin"
ln -sfn "$hash" "$root/current"
echo ">> testbin: binaries in $dir/bin ($kver, etcd $(modver etcd go.etcd.io/etcd/server/v3)); tests/tools/bin links there"
