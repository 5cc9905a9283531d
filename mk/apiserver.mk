# Real Kubernetes control plane for the `apiserver` test tier (see tests/fixtures/apiserver.py).
#
#   make testbin   build kube-apiserver, kube-controller-manager, kubectl, etcd, helm and cnitool from the
#                  pins in tests/tools/*/go.mod into ~/.cache/egw/testbin/<hash of pins>/bin (reused when
#                  present; the first build takes many minutes on 2 cores) and link tests/tools/bin there.

TEST_TOOLS += testbin
.PHONY: testbin

testbin:
	@tests/tools/testbin.sh
