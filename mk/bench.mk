# mk/bench.mk — `make bench`: the peer-churn benchmark (issue 4; bench/peer_churn). NOT part of `make test`.
#   1. UAPI backend on the host: wireguard-go in a scratch namespace, W1 1k/10k/50k, W2a/W3/W4 against 10k,
#      W8 micro (routes, iptables); wg set per peer only up to 1000 ops per case.
#   2. Kernel backend inside the QEMU VM (emulated: absolute times are slow, ratios hold): W1 100/1k,
#      W2a/W3/W4 against 1k (churn 100); wg set / pyroute2 only up to 100 ops, wgctrl-go up to 1000.
#      Sizes are small because under TCG every process start costs ~0.2 s and tearing down a device costs
#      milliseconds per peer; a run cut short by the VM timeout still keeps the cases it finished.
#   3. Merge: bench/results/peer_churn.json, the README table (between peer_churn markers) and a PNG chart.
# About 20-30 minutes on the 2-core dev machine. The wgctrl-go baseline (bench/wgctrl) is built with the
# machine's Go; modules come from the Go proxy into ~/.cache/egw/go (keyed by go.sum).

GO ?= $(shell command -v go || echo /usr/local/go/bin/go)
BENCH_GOENV := GOFLAGS=-mod=mod GOPATH=$(HOME)/.cache/egw/go GOMODCACHE=$(HOME)/.cache/egw/go/mod GOTOOLCHAIN=local
BENCH_UAPI_ARGS ?= --sizes 1000,10000,50000 --base 10000 --churn 1000 --reps 5 --micro --shell-max 1000
BENCH_KERNEL_ARGS ?= --sizes 100,1000 --base 1000 --churn 100 --batches 1,32,256 --reps 5 --shell-max 100 \
	--wgctrl-max 1000
BENCH_EXTRA_STAMP := $(VENV)/.bench-extra

.PHONY: bench bench-peer-churn bench-peer-churn-uapi bench-peer-churn-kernel bench-report

bench: bench-peer-churn

bench-peer-churn: bench-peer-churn-uapi bench-peer-churn-kernel bench-report

build/wgctrl-bench: bench/wgctrl/main.go bench/wgctrl/go.mod bench/wgctrl/go.sum
	@echo ">> building the wgctrl-go baseline (bench/wgctrl) with $(GO)"
	@mkdir -p build
	@cd bench/wgctrl && $(BENCH_GOENV) $(GO) build -o ../../build/wgctrl-bench .

$(BENCH_EXTRA_STAMP): | $(STAMP)
	@echo ">> pip install '.[bench]' (matplotlib for the chart)"
	@$(PY) -m pip install -q -e '.[bench]'
	@touch $@

bench-peer-churn-uapi: deps venv build/wgctrl-bench
	@echo ">> peer churn, UAPI backend (wireguard-go on the host)"
	@$(PY) -m bench.peer_churn --backend uapi $(BENCH_UAPI_ARGS)

bench-peer-churn-kernel: deps venv vmimage build/wgctrl-bench
	@echo ">> peer churn, kernel backend (inside the QEMU VM)"
	@$(PY) -m bench.peer_churn.vm --timeout 1800 -- $(BENCH_KERNEL_ARGS)

bench-report: $(BENCH_EXTRA_STAMP)
	@$(PY) -m bench.peer_churn.report
