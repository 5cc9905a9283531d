"""Build the CustomResourceDefinition documents from the model (pure; writing files is the CLI's job).

``egw crds --out charts/kube-egress-gateway/crds`` writes one YAML file per kind; the unit tests
regenerate them and fail when the checked-in files differ.
"""

from __future__ import annotations

from typing import Any

from egw.model import crds, schema


def crd(kind: crds.Kind) -> dict[str, Any]:
    """The apiextensions.k8s.io/v1 CRD of one kind."""
    root = {
        "type": "object",
        "description": kind.description,
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": "Versioned schema of this representation of an object.",
            },
            "kind": {"type": "string", "description": "REST resource this object represents."},
            "metadata": {"type": "object"},
            "spec": schema.openapi(kind.spec),
            "status": schema.openapi(kind.status),
        },
        "required": ["spec"],
    }
    columns = []
    for col in kind.columns:
        entry: dict[str, Any] = {
            "name": col.name,
            "type": col.type,
            "jsonPath": col.json_path,
            "description": col.description,
        }
        if col.priority:
            entry["priority"] = col.priority
        columns.append(entry)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "labels": {"app.kubernetes.io/part-of": "kube-egress-gateway"},
        },
        "spec": {
            "group": crds.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": kind.kind + "List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": [kind.short_name],
                "categories": [crds.CATEGORY],
            },
            "versions": [
                {
                    "name": crds.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def file_name(kind: crds.Kind) -> str:
    return f"{crds.GROUP}_{kind.plural}.yaml"


def all_crds() -> dict[str, dict[str, Any]]:
    """File name → CRD document, for every kind."""
    return {file_name(k): crd(k) for k in crds.KINDS}
