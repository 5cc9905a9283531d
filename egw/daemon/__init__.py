"""Gateway-node daemon: gateway network namespaces, WireGuard peers, GatewayStatus, LB health probe."""
