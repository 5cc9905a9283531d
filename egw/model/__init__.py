"""Pure value types and helpers: no I/O, no third-party clients, fully typed.

Everything above this layer (plans, adapters, services) speaks in these types.
"""
