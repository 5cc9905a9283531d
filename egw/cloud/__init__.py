"""Azure side effects; only ``egw.cloud`` imports the Azure SDK."""
