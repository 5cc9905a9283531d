"""CNI ADD latency of kube-egress-gateway-cni (issue 6; performance.md §6). Run: ``python -m bench.cni_latency``."""
