"""The control-plane fixture itself: pinned versions, RBAC with minted ServiceAccount tokens, garbage collection.

These prove what component tests rely on: the apiserver enforces RBAC for a ServiceAccount token minted by
``control_plane.service_account_token``, and kube-controller-manager really cascades ownerReference deletes.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from egw.model import crds
from tests.fixtures.apiserver import ControlPlane

pytestmark = pytest.mark.apiserver

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def pinned(module: str, path: str) -> str:
    """The version of `path` required in tests/tools/<module>/go.mod."""
    text = (TOOLS / module / "go.mod").read_text()
    m = re.search(rf"^\s*(?:require\s+)?{re.escape(path)} (v\S+)", text, re.M)
    assert m, f"{path} is not pinned in tests/tools/{module}/go.mod"
    return m.group(1)


def wait_for(what: str, ok: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)


def test_kubectl_and_apiserver_report_the_pinned_release(control_plane: ControlPlane) -> None:
    want = pinned("kube", "k8s.io/kubernetes")
    out = json.loads(control_plane.kubectl("version", "-o", "json").stdout)
    assert out["clientVersion"]["gitVersion"] == want
    assert out["serverVersion"]["gitVersion"] == want
    assert out["serverVersion"]["minor"] == want.split(".")[1]


def test_etcd_and_helm_report_the_pinned_versions(control_plane: ControlPlane) -> None:
    etcd = subprocess.run([control_plane.bin_dir / "etcd", "--version"], capture_output=True, text=True, check=True)
    assert f"etcd Version: {pinned('etcd', 'go.etcd.io/etcd/server/v3').lstrip('v')}" in etcd.stdout
    helm = subprocess.run(
        [control_plane.bin_dir / "helm", "version", "--short"], capture_output=True, text=True, check=True
    )
    assert helm.stdout.startswith(pinned("helm", "helm.sh/helm/v3"))


def test_crds_are_installed_and_established(control_plane: ControlPlane) -> None:
    ext = client.ApiextensionsV1Api(control_plane.api_client)
    for kind in crds.KINDS:
        crd = ext.read_custom_resource_definition(kind.crd_name)
        conds = {c.type: c.status for c in crd.status.conditions}
        assert conds.get("Established") == "True", (kind.crd_name, conds)
        assert crd.spec.names.short_names == [kind.short_name]


def _sa_can_list_sgcs(control_plane: ControlPlane, kubeconfig: Path, namespace: str) -> bool:
    api = control_plane.client_for(kubeconfig)
    try:
        client.CustomObjectsApi(api).list_namespaced_custom_object(
            crds.GROUP, crds.VERSION, namespace, crds.STATIC_GATEWAY_CONFIGURATION.plural
        )
        return True
    except ApiException as exc:
        assert exc.status == 403, exc
        assert f"system:serviceaccount:{namespace}:reader" in exc.body
        return False
    finally:
        api.close()


def test_service_account_token_is_subject_to_rbac(control_plane: ControlPlane, k8s_namespace: str) -> None:
    ns = k8s_namespace
    kubeconfig = control_plane.service_account_kubeconfig(ns, "reader")
    who = json.loads(control_plane.kubectl("auth", "whoami", "-o", "json", kubeconfig=kubeconfig).stdout)
    assert who["status"]["userInfo"]["username"] == f"system:serviceaccount:{ns}:reader"

    assert not _sa_can_list_sgcs(control_plane, kubeconfig, ns)

    rbac = client.RbacAuthorizationV1Api(control_plane.api_client)
    rbac.create_namespaced_role(
        ns,
        client.V1Role(
            metadata={"name": "sgc-reader"},
            rules=[
                client.V1PolicyRule(
                    api_groups=[crds.GROUP], resources=[crds.STATIC_GATEWAY_CONFIGURATION.plural], verbs=["list"]
                )
            ],
        ),
    )
    rbac.create_namespaced_role_binding(
        ns,
        client.V1RoleBinding(
            metadata={"name": "sgc-reader"},
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="sgc-reader"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=ns)],
        ),
    )
    # RBAC changes reach the authorizer through an informer: allowed shortly after the binding exists.
    wait_for("the RoleBinding to take effect", lambda: _sa_can_list_sgcs(control_plane, kubeconfig, ns))
    # ...and only for the verb granted.
    denied = control_plane.kubectl("delete", "sgc", "gw001", "-n", ns, kubeconfig=kubeconfig, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()


def test_deleting_an_owner_garbage_collects_owned_objects(control_plane: ControlPlane, k8s_namespace: str) -> None:
    objs = client.CustomObjectsApi(control_plane.api_client)
    ns = k8s_namespace
    sgc = objs.create_namespaced_custom_object(
        crds.GROUP,
        crds.VERSION,
        ns,
        crds.STATIC_GATEWAY_CONFIGURATION.plural,
        {
            "apiVersion": crds.API_VERSION,
            "kind": "StaticGatewayConfiguration",
            "metadata": {"name": "gw001"},
            "spec": {"gatewayNodepoolName": "gwpool"},
        },
    )
    owner = {
        "apiVersion": crds.API_VERSION,
        "kind": "StaticGatewayConfiguration",
        "name": "gw001",
        "uid": sgc["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    glbc_plural = crds.GATEWAY_LB_CONFIGURATION.plural
    objs.create_namespaced_custom_object(
        crds.GROUP,
        crds.VERSION,
        ns,
        glbc_plural,
        {
            "apiVersion": crds.API_VERSION,
            "kind": "GatewayLBConfiguration",
            "metadata": {"name": "gw001", "ownerReferences": [owner]},
            "spec": {"gatewayNodepoolName": "gwpool"},
        },
    )
    core = client.CoreV1Api(control_plane.api_client)
    core.create_namespaced_secret(
        ns, client.V1Secret(metadata={"name": "gw001", "ownerReferences": [owner]}, string_data={"k": "v"})
    )

    def gone(read: Any) -> bool:
        try:
            read()
            return False
        except ApiException as exc:
            assert exc.status == 404, exc
            return True

    # Still there while the owner exists: only the owner's deletion may remove them.
    assert not gone(lambda: objs.get_namespaced_custom_object(crds.GROUP, crds.VERSION, ns, glbc_plural, "gw001"))

    objs.delete_namespaced_custom_object(
        crds.GROUP, crds.VERSION, ns, crds.STATIC_GATEWAY_CONFIGURATION.plural, "gw001"
    )
    wait_for(
        "the owned GatewayLBConfiguration to be collected",
        lambda: gone(lambda: objs.get_namespaced_custom_object(crds.GROUP, crds.VERSION, ns, glbc_plural, "gw001")),
    )
    wait_for("the owned Secret to be collected", lambda: gone(lambda: core.read_namespaced_secret("gw001", ns)))
