"""The control-plane fixture itself: pinned versions, RBAC with minted ServiceAccount tokens, garbage collection.

These prove what component tests rely on: the apiserver enforces RBAC for a ServiceAccount token minted by
``control_plane.service_account_token``, and kube-controller-manager really cascades ownerReference deletes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
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


def test_helm_installs_the_chart_into_the_control_plane(control_plane: ControlPlane, k8s_namespace: str) -> None:
    helm = [str(control_plane.bin_dir / "helm"), f"--kubeconfig={control_plane.kubeconfig}", "-n", k8s_namespace]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(control_plane.workdir), "HELM_CACHE_HOME": str(control_plane.workdir)}

    def run(*args: str) -> str:
        return subprocess.run([*helm, *args], capture_output=True, text=True, check=True, env=env).stdout

    run("install", "egw", str(TOOLS.parents[1] / "charts" / "kube-egress-gateway"), "--wait", "--timeout=60s")
    status = json.loads(run("status", "egw", "-o", "json"))
    assert status["info"]["status"] == "deployed"
    assert status["name"] == "egw" and status["version"] == 1
    # Helm keeps the release as a Secret through the same apiserver.
    core = client.CoreV1Api(control_plane.api_client)
    assert core.read_namespaced_secret("sh.helm.release.v1.egw.v1", k8s_namespace).type == "helm.sh/release.v1"
    run("uninstall", "egw", "--wait")
    assert json.loads(run("list", "-o", "json")) == []


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


def _grant(control_plane: ControlPlane, ns: str, sa: str, rules: list[client.V1PolicyRule]) -> None:
    rbac = client.RbacAuthorizationV1Api(control_plane.api_client)
    rbac.create_namespaced_role(ns, client.V1Role(metadata={"name": sa}, rules=rules))
    rbac.create_namespaced_role_binding(
        ns,
        client.V1RoleBinding(
            metadata={"name": sa},
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=sa),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name=sa, namespace=ns)],
        ),
    )


def _pod_endpoint_owned_by_pod(control_plane: ControlPlane, ns: str) -> dict[str, Any]:
    core = client.CoreV1Api(control_plane.api_client)
    pod = core.create_namespaced_pod(
        ns,
        client.V1Pod(
            metadata={"name": "pod1"},
            spec=client.V1PodSpec(node_name="node-a", containers=[client.V1Container(name="c", image="busybox")]),
        ),
    )
    return {
        "apiVersion": crds.API_VERSION,
        "kind": "PodEndpoint",
        "metadata": {
            "name": "pod1",
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": "pod1",
                    "uid": pod.metadata.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "staticGatewayConfiguration": "gw001",
            "podIpAddress": "10.244.0.5/32",
            "podPublicKey": "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=",
        },
    }


def _create_as(control_plane: ControlPlane, kubeconfig: Path, ns: str, body: dict[str, Any]) -> ApiException | None:
    api = control_plane.client_for(kubeconfig)
    try:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            crds.GROUP, crds.VERSION, ns, crds.POD_ENDPOINT.plural, body
        )
        return None
    except ApiException as exc:
        return exc
    finally:
        api.close()


@pytest.mark.parametrize("strict", [False, True], ids=["default", "OwnerReferencesPermissionEnforcement"])
def test_block_owner_deletion_needs_finalizers_permission_only_in_the_strict_profile(
    request: pytest.FixtureRequest, strict: bool
) -> None:
    """The cni-manager sets a controller reference from its PodEndpoint to the Pod. Where the admission
    plugin runs (OpenShift-like clusters) that needs `update` on pods/finalizers; the default profile lets
    it through. Both control planes are real, so a missing RBAC verb shows up here, not in production."""
    cp: ControlPlane = request.getfixturevalue("strict_control_plane" if strict else "control_plane")
    ns = cp.create_namespace()
    try:
        body = _pod_endpoint_owned_by_pod(cp, ns)
        create = client.V1PolicyRule(api_groups=[crds.GROUP], resources=[crds.POD_ENDPOINT.plural], verbs=["create"])
        _grant(cp, ns, "cni-manager", [create])
        kubeconfig = cp.service_account_kubeconfig(ns, "cni-manager")
        wait_for(
            "the RoleBinding",
            lambda: (
                cp.kubectl(
                    "auth",
                    "can-i",
                    "create",
                    f"{crds.POD_ENDPOINT.plural}.{crds.GROUP}",
                    kubeconfig=kubeconfig,
                    check=False,
                ).stdout.strip()
                == "yes"
            ),
        )
        refused = _create_as(cp, kubeconfig, ns, body)
        if not strict:
            assert refused is None, refused
            return
        assert refused is not None and refused.status == 403, refused
        assert "cannot set blockOwnerDeletion" in refused.body, refused.body

        finalizers = client.V1PolicyRule(api_groups=[""], resources=["pods/finalizers"], verbs=["update"])
        rbac = client.RbacAuthorizationV1Api(cp.api_client)
        rules = cp.api_client.sanitize_for_serialization([create, finalizers])
        rbac.patch_namespaced_role("cni-manager", ns, {"rules": rules})
        wait_for("pods/finalizers to be granted", lambda: _create_as(cp, kubeconfig, ns, body) is None)
    finally:
        cp.delete_namespace(ns)


CRASHING_SESSION = """
import json, sys, time
from tests.fixtures.apiserver import running_control_plane
with running_control_plane() as cp:
    print(json.dumps({"pids": cp.pids, "workdir": str(cp.workdir)}), flush=True)
    time.sleep(600)
"""


def test_a_killed_session_leaves_no_process_and_its_dir_is_swept(control_plane: ControlPlane) -> None:
    """SIGKILL a process that runs a control plane: etcd, apiserver and controller-manager die with it
    (PDEATHSIG), and the next session's sweep removes its temp dir."""
    from tests.fixtures import apiserver

    child = subprocess.Popen(
        [sys.executable, "-c", CRASHING_SESSION],
        cwd=TOOLS.parents[1],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"EGW_TESTBIN": str(control_plane.bin_dir)},
    )
    try:
        assert child.stdout is not None
        started = json.loads(child.stdout.readline())
    finally:
        child.kill()
        child.wait()
    pids, workdir = started["pids"], Path(started["workdir"])
    assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager"}
    wait_for("the orphaned control plane to die", lambda: not any(Path(f"/proc/{p}").exists() for p in pids.values()))
    # The finalizer never ran, so the dir is left for a sweep: ours, or one of a pytest session starting
    # concurrently on this machine (it sweeps dirs of dead sessions too).
    swept = apiserver.sweep_workdirs()
    assert not workdir.exists(), f"{workdir} survived the sweep ({swept})"
    assert control_plane.workdir.exists()  # a live session's dir is left alone
