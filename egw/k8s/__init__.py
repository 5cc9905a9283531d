"""API-server side effects; only ``egw.k8s.client`` imports the Kubernetes client library."""
