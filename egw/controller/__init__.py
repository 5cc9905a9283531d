"""Cluster controller: StaticGatewayConfiguration → GatewayLB/VMConfiguration → Azure."""
