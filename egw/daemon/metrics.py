"""Prometheus metrics of the gateway daemon (one registry per daemon instance, served on --metrics-port)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.gateways = Gauge("egw_daemon_gateways", "Gateways ready on this node.", registry=r)
        self.peers = Gauge("egw_daemon_peers", "WireGuard peers in place, per gateway.", ["gateway"], registry=r)
        self.invalid = Gauge(
            "egw_daemon_invalid_podendpoints", "PodEndpoints rejected, per gateway.", ["gateway"], registry=r
        )
        self.reconcile_seconds = Histogram(
            "egw_daemon_reconcile_duration_seconds",
            "Duration of one reconcile.",
            ["kind"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.reconcile_errors = Counter("egw_daemon_reconcile_errors_total", "Failed reconciles.", ["kind"], registry=r)
        self.kernel_writes = Counter(
            "egw_daemon_kernel_writes_total", "Mutating kernel operations (0 while converged).", ["kind"], registry=r
        )
        self.peer_batch = Histogram(
            "egw_daemon_peer_batch_size",
            "Peers changed per WireGuard sync transaction.",
            buckets=(1, 2, 5, 10, 50, 100, 500, 1000, 5000, 20000, 50000),
            registry=r,
        )
        self.peer_sync_seconds = Histogram(
            "egw_daemon_peer_sync_duration_seconds",
            "Duration of one peer + route sync of a gateway.",
            buckets=_BUCKETS,
            registry=r,
        )
        self.status_writes = Counter("egw_daemon_status_writes_total", "GatewayStatus API writes.", registry=r)

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104 - a DaemonSet's metrics port
        start_http_server(port, addr=addr, registry=self.registry)
