# Gateway daemon bench: 5 000 PodEndpoints on one gateway, cold-start converge, GatewayStatus size,
# kernel writes of a resync and of a restart (bench/daemon_scale.py → bench/results/daemon_scale.json).
.PHONY: bench-daemon
bench-daemon: deps venv testbin
	@$(PY) -m pytest -q -s -p no:cacheprovider bench/daemon_scale.py
