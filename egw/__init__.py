"""egw: a Kubernetes static egress gateway in the style of Azure's kube-egress-gateway.

Importing the package has no side effects; the services live in subpackages and are started
through the ``egw`` console script (see ``egw.__main__``).
"""

__version__ = "0.1.0"
