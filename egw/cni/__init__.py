"""Pod side: the chained CNI plugin and its node-local cni-manager."""
