"""Node side effects (netns, rtnetlink, WireGuard, iptables, sysctl), one module per kernel subsystem."""
