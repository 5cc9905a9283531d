"""Pure desired-state builders: model objects in, model objects out. Never imports an adapter."""
