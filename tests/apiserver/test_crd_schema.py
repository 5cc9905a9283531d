"""The generated CRDs as a real kube-apiserver enforces them, side by side with the Python model.

Every rejection asserts the field path and the schema's message, and that egw.model rejects the same
object at the same path; the agreement tests send tricky addresses, CIDRs and keys through both and require
the same verdict (so a value the controller accepts can always be stored, and vice versa). Also covers
defaults, printer columns (`kubectl get`) and descriptions (`kubectl explain`).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from egw.model import crds
from egw.model.errors import ValidationError
from tests.fixtures.apiserver import ControlPlane

pytestmark = pytest.mark.apiserver

KEY_A = "aGVsbG8td29ybGQtaGVsbG8td29ybGQtaGVsbG8tMTI="
KEY_B = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
PREFIX_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
    "/providers/Microsoft.Network/publicIPPrefixes/egress"
)
VMSS = {"vmssResourceGroup": "rg", "vmssName": "gwvmss", "publicIpPrefixSize": 31}
SEED_STATUS = {
    "egressIpPrefix": "1.2.3.4/31",
    "gatewayServerProfile": {
        "ip": "10.243.0.6",
        "port": 6000,
        "publicKey": KEY_A,
        "privateKeySecretRef": {"apiVersion": "v1", "kind": "Secret", "name": "gw001"},
    },
    "conditions": [
        {"type": "Ready", "status": "True", "reason": "Provisioned", "lastTransitionTime": "2026-01-01T00:00:00Z"}
    ],
}
MODELS: dict[str, type[crds.Resource]] = {r.KIND.kind: r for r in crds.RESOURCES}
KIND_OF = {r.KIND.kind: r.KIND for r in crds.RESOURCES}


def sgc(name: str = "gw001", status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": crds.API_VERSION,
        "kind": "StaticGatewayConfiguration",
        "metadata": {"name": name},
        "spec": {k: v for k, v in ({"gatewayNodepoolName": "gwpool"} | spec).items() if v is not None},
    }
    if status is not None:
        body["status"] = status
    return body


def pod_endpoint(name: str = "pod1", **spec: Any) -> dict[str, Any]:
    base = {"staticGatewayConfiguration": "gw001", "podIpAddress": "10.244.0.5/32", "podPublicKey": KEY_B}
    return {
        "apiVersion": crds.API_VERSION,
        "kind": "PodEndpoint",
        "metadata": {"name": name},
        "spec": base | spec,
    }


class Api:
    """Create/patch egw objects in one namespace and report the apiserver's field errors."""

    def __init__(self, cp: ControlPlane, namespace: str) -> None:
        self.cp = cp
        self.ns = namespace
        self.objs = client.CustomObjectsApi(cp.api_client)

    def create(self, body: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        plural = KIND_OF[body["kind"]].plural
        kwargs = {"dry_run": "All"} if dry_run else {}
        return dict(
            self.objs.create_namespaced_custom_object(crds.GROUP, crds.VERSION, self.ns, plural, body, **kwargs)
        )

    def set_status(self, kind: str, name: str, status: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        plural = KIND_OF[kind].plural
        current = self.objs.get_namespaced_custom_object(crds.GROUP, crds.VERSION, self.ns, plural, name)
        current["status"] = status
        kwargs = {"dry_run": "All"} if dry_run else {}
        return dict(
            self.objs.replace_namespaced_custom_object_status(
                crds.GROUP, crds.VERSION, self.ns, plural, name, current, **kwargs
            )
        )

    @staticmethod
    def causes(exc: ApiException) -> list[tuple[str, str]]:
        assert exc.status == 422, f"expected 422 Invalid, got {exc.status}: {exc.body}"
        body = json.loads(exc.body)
        return [(c.get("field", ""), c.get("message", "")) for c in body["details"]["causes"]]

    def rejection(self, body: dict[str, Any]) -> list[tuple[str, str]]:
        with pytest.raises(ApiException) as info:
            self.create(body, dry_run=True)
        return self.causes(info.value)

    def status_rejection(self, kind: str, name: str, status: dict[str, Any]) -> list[tuple[str, str]]:
        with pytest.raises(ApiException) as info:
            self.set_status(kind, name, status, dry_run=True)
        return self.causes(info.value)

    def accepts(self, body: dict[str, Any]) -> bool:
        try:
            self.create(body, dry_run=True)
            return True
        except ApiException as exc:
            self.causes(exc)  # must be a validation failure, not some other error
            return False


@pytest.fixture
def api(control_plane: ControlPlane, k8s_namespace: str) -> Iterator[Api]:
    yield Api(control_plane, k8s_namespace)


def model_errors(body: dict[str, Any]) -> list[tuple[str, str]]:
    try:
        MODELS[body["kind"]].from_dict(body)
    except ValidationError as exc:
        return [(e.path, e.reason) for e in exc.errors]
    return []


def model_accepts(body: dict[str, Any]) -> bool:
    return not model_errors(body)


# ------------------------------------------------------------------------------------------- rejections

KEY_MESSAGE = "must be a WireGuard key: 44 characters of standard base64 encoding 32 bytes"

REJECTED = {
    "both pools": (
        sgc(gatewayVmssProfile=VMSS),
        "spec",
        "exactly one of gatewayNodepoolName and gatewayVmssProfile must be set",
    ),
    "no pool": (
        sgc(gatewayNodepoolName=None),
        "spec",
        "exactly one of gatewayNodepoolName and gatewayVmssProfile must be set",
    ),
    "bad exclude CIDR": (
        sgc(excludeCidrs=["10.0.0.0/8", "10.1.0.0/33"]),
        "spec.excludeCidrs[1]",
        "must be a CIDR such as 10.0.0.0/8 or fd00::/64",
    ),
    "prefix id without public IPs": (
        sgc(provisionPublicIps=False, publicIpPrefixId=PREFIX_ID),
        "spec.publicIpPrefixId",
        "publicIpPrefixId must be empty when provisionPublicIps is false",
    ),
    "pod IP not a single host": (
        pod_endpoint(podIpAddress="10.244.0.0/24"),
        "spec.podIpAddress",
        "must be a single-host CIDR (/32 or /128)",
    ),
    "pod IP without prefix length": (
        pod_endpoint(podIpAddress="10.244.0.5"),
        "spec.podIpAddress",
        "must be a single-host CIDR (/32 or /128)",
    ),
    "malformed pod public key": (
        pod_endpoint(podPublicKey=KEY_B[:-2] + "b="),  # 'b' leaves padding bits set: not 32 bytes
        "spec.podPublicKey",
        KEY_MESSAGE,
    ),
}


@pytest.mark.parametrize("case", list(REJECTED), ids=list(REJECTED))
def test_apiserver_rejects_with_the_schema_message(api: Api, case: str) -> None:
    body, field, message = REJECTED[case]
    causes = api.rejection(body)
    assert any(f == field and message in m for f, m in causes), causes
    # The Python model rejects the same object at the same field.
    assert field in [p for p, _ in model_errors(body)], model_errors(body)


def test_status_subresource_rejects_a_malformed_gateway_public_key(api: Api) -> None:
    api.create(sgc())
    bad = copy.deepcopy(SEED_STATUS)
    bad["gatewayServerProfile"]["publicKey"] = "not-a-wireguard-key"
    causes = api.status_rejection("StaticGatewayConfiguration", "gw001", bad)
    assert any(f == "status.gatewayServerProfile.publicKey" and KEY_MESSAGE in m for f, m in causes), causes
    assert "status.gatewayServerProfile.publicKey" in [p for p, _ in model_errors(sgc(status=bad))]
    # The same object with a good key is stored, and the main resource ignores status changes.
    stored = api.set_status("StaticGatewayConfiguration", "gw001", SEED_STATUS)
    assert stored["status"]["gatewayServerProfile"]["publicKey"] == KEY_A
    assert crds.is_ready(crds.StaticGatewayConfiguration.from_dict(stored))


def test_a_good_sgc_is_stored_with_the_model_defaults(api: Api) -> None:
    created = api.create(sgc(excludeCidrs=["10.0.0.0/8", "fd00::/64"]))
    spec = created["spec"]
    assert spec["provisionPublicIps"] is True
    assert spec["defaultRoute"] == crds.DEFAULT_ROUTE_GATEWAY
    # Defaults applied by the apiserver equal the model's own defaults.
    assert (
        crds.StaticGatewayConfiguration.from_dict(created).spec
        == crds.StaticGatewayConfiguration.from_dict(sgc(excludeCidrs=["10.0.0.0/8", "fd00::/64"])).spec
    )
    vmss = api.create(sgc("gw002", gatewayNodepoolName=None, gatewayVmssProfile=VMSS, provisionPublicIps=False))
    assert vmss["spec"]["gatewayVmssProfile"] == VMSS
    byo = api.create(sgc("gw003", publicIpPrefixId=PREFIX_ID))
    assert byo["spec"]["publicIpPrefixId"] == PREFIX_ID
    pe = api.create(pod_endpoint(podIpAddress="fd00::5/128"))
    assert crds.PodEndpoint.from_dict(pe).spec.pod_ip_address == "fd00::5/128"


# ----------------------------------------------------------------------------- Python <-> CEL agreement

IPS = [
    "10.243.0.6", "0.0.0.0", "255.255.255.255", "::", "::1", "fe80::1", "2001:db8::1", "FD00::A",
    "1.2.3", "256.1.1.1", "010.0.0.1", "1.2.3.4 ", " 1.2.3.4", "::ffff:1.2.3.4", "fe80::1%eth0",
    "10.0.0.1/32", "", "1:2:3:4:5:6:7:8:9", "1.2.3.04",
]  # fmt: skip
CIDRS = [
    "10.0.0.0/8", "10.0.0.1/8", "0.0.0.0/0", "::/0", "fd00::/64", "1.2.3.4/32", "2001:db8::1/128",
    "10.0.0.0/33", "fd00::/129", "10.0.0.0/08", "10.0.0.0", "10.0.0.0/-1", "10.0.0.0/ 8", "010.0.0.0/8",
    "::ffff:1.2.3.0/120", "10.0.0.0/8/8", "", "fe80::/64%eth0", "10.0.0.0/+8",
]  # fmt: skip
HOSTS = [
    "10.244.0.5/32", "fd00::5/128", "::/128", "10.244.0.0/24", "10.244.0.5", "fd00::/64", "10.244.0.5/032",
    "::ffff:10.0.0.1/128", "10.244.0.5/33", "fd00::5/127",
]  # fmt: skip
KEYS = [
    KEY_A, KEY_B, "A" * 43 + "=", "A" * 42 + "B=", "A" * 42 + "w=", KEY_B[:-1], KEY_B + "=",
    KEY_B.replace("+", "-"), "A" * 44, " " + KEY_B[1:], KEY_B + "\n",
]  # fmt: skip
EGRESS_PREFIXES = [
    "1.2.3.4/31", "10.0.1.8,10.0.1.9", "10.0.1.8", "fd00::1,10.0.0.1", "10.0.1.8,", ",10.0.1.8", "10.0.1.8, 10.0.1.9",
    "1.2.3.4/31,10.0.0.1", "bogus", "", "::ffff:1.2.3.4",
]  # fmt: skip
OBJECT_NAMES = ["gw001", "a", "a.b-c", "A", "-a", "a-", "a..b", "a_b", "x" * 253, "x" * 254, ""]
REFS = ["ns/gw001", "ns/a.b", "Ns/gw", "ns/Gw", "ns", "ns/", "/gw", "ns/gw/x", "ns/gw.", "n_s/gw", "ns/gw\n"]
NETNS = [
    "gw-17f83d68-4cab-422d-a3af-ed320a761cee-10_243_0_6", "a", "...", ".a", "..a", "a.", ".", "..", "",
    "a/b", "a b", "x" * 255, "x" * 256, "ns\n",
]  # fmt: skip
PREFIX_IDS = [
    PREFIX_ID, PREFIX_ID.upper(), PREFIX_ID + "/x", PREFIX_ID.replace("publicIPPrefixes", "publicIPAddresses"),
    "", "/subscriptions//resourceGroups/rg/providers/Microsoft.Network/publicIPPrefixes/p", PREFIX_ID + "\n",
]  # fmt: skip
POOL_NAMES = ["gwpool", "x" * 80, "x" * 81]
PREFIX_SIZES = [28, 31, 0, -1, 32, "31", True, 30.5]
PORTS = [1, 6000, 65535, 0, 65536, -1, "6000", True]


def gateway_status(**entry: Any) -> dict[str, Any]:
    ns_entry = {"staticGatewayConfiguration": "ns/gw001", "netnsName": "gw-x-10_243_0_6"}
    peer = {"podEndpoint": "ns/pod1", "netnsName": "gw-x-10_243_0_6", "publicKey": KEY_B}
    return {
        "apiVersion": crds.API_VERSION,
        "kind": "GatewayStatus",
        "metadata": {"name": "gwnode-0"},
        "spec": {
            "readyGatewayNamespaces": [ns_entry | entry.get("gateway", {})],
            "readyPeerConfigurations": [peer | entry.get("peer", {})],
        },
    }


# field -> (object built around one value, the values to try)
SPEC_CASES: dict[str, tuple[Any, list[Any]]] = {
    "sgc.excludeCidrs[]": (lambda v: sgc(excludeCidrs=[v]), CIDRS),
    "sgc.publicIpPrefixId": (lambda v: sgc(publicIpPrefixId=v), PREFIX_IDS),
    "sgc.gatewayNodepoolName": (lambda v: sgc(gatewayNodepoolName=v), POOL_NAMES),
    "sgc.gatewayVmssProfile.publicIpPrefixSize": (
        lambda v: sgc(gatewayNodepoolName=None, gatewayVmssProfile=VMSS | {"publicIpPrefixSize": v}),
        PREFIX_SIZES,
    ),
    "pe.podIpAddress": (lambda v: pod_endpoint(podIpAddress=v), HOSTS),
    "pe.podPublicKey": (lambda v: pod_endpoint(podPublicKey=v), KEYS),
    "pe.staticGatewayConfiguration": (lambda v: pod_endpoint(staticGatewayConfiguration=v), OBJECT_NAMES),
    "gws.gateway.staticGatewayConfiguration": (
        lambda v: gateway_status(gateway={"staticGatewayConfiguration": v}),
        REFS,
    ),
    "gws.gateway.netnsName": (lambda v: gateway_status(gateway={"netnsName": v}), NETNS),
    "gws.peer.podEndpoint": (lambda v: gateway_status(peer={"podEndpoint": v}), REFS),
    "gws.peer.publicKey": (lambda v: gateway_status(peer={"publicKey": v}), KEYS),
}
STATUS_CASES: dict[str, tuple[Any, list[Any]]] = {
    "sgc.status.gatewayServerProfile.ip": (lambda st, v: st["gatewayServerProfile"].update(ip=v), IPS),
    "sgc.status.gatewayServerProfile.publicKey": (lambda st, v: st["gatewayServerProfile"].update(publicKey=v), KEYS),
    "sgc.status.gatewayServerProfile.port": (lambda st, v: st["gatewayServerProfile"].update(port=v), PORTS),
    "sgc.status.egressIpPrefix": (lambda st, v: st.update(egressIpPrefix=v), EGRESS_PREFIXES),
}


def verdict_line(field: str, value: Any, server: bool, body: dict[str, Any]) -> str:
    return f"{field}={value!r}: apiserver {'accepts' if server else 'rejects'}, model errors {model_errors(body)}"


@pytest.mark.parametrize("field", list(SPEC_CASES))
def test_apiserver_and_model_agree_on_every_value(api: Api, field: str) -> None:
    build, values = SPEC_CASES[field]
    bodies = [build(v) for v in values]
    assert any(model_accepts(b) for b in bodies) and not all(model_accepts(b) for b in bodies), "needs both kinds"
    disagreements = [
        verdict_line(field, v, server, b)
        for v, b in zip(values, bodies, strict=True)
        if (server := api.accepts(b)) != model_accepts(b)
    ]
    assert not disagreements, "\n".join(disagreements)


@pytest.mark.parametrize("field", list(STATUS_CASES))
def test_status_subresource_and_model_agree_on_every_value(api: Api, field: str) -> None:
    put, values = STATUS_CASES[field]
    api.create(sgc())
    disagreements = []
    verdicts = set()
    for value in values:
        status = copy.deepcopy(SEED_STATUS)
        put(status, value)
        try:
            api.set_status("StaticGatewayConfiguration", "gw001", status, dry_run=True)
            server = True
        except ApiException as exc:
            api.causes(exc)  # a validation failure, not some other error
            server = False
        verdicts.add(server)
        if server != model_accepts(sgc(status=status)):
            disagreements.append(verdict_line(field, value, server, sgc(status=status)))
    assert not disagreements, "\n".join(disagreements)
    assert verdicts == {True, False}, "the values must include good and bad ones"


# --------------------------------------------------------------------------------------- kubectl views


def columns(header: str) -> list[str]:
    return re.split(r"\s{2,}", header.strip())


def table(text: str) -> list[dict[str, str]]:
    """kubectl's column output as dicts, cut at the header's column starts (empty cells stay empty)."""
    lines = text.splitlines()
    names = columns(lines[0])
    starts: list[int] = []
    for n in names:  # search left to right: "NAME" also occurs inside "NAMESPACE"
        starts.append(lines[0].index(n, starts[-1] + 1 if starts else 0))
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    return [{n: line[a:b].strip() for n, (a, b) in zip(names, bounds, strict=True)} for line in lines[1:]]


def test_kubectl_get_sgc_prints_the_printer_columns(api: Api) -> None:
    api.create(sgc())
    api.set_status("StaticGatewayConfiguration", "gw001", SEED_STATUS)
    out = api.cp.kubectl("get", "sgc", "-n", api.ns).stdout
    kind = crds.STATIC_GATEWAY_CONFIGURATION
    assert columns(out.splitlines()[0]) == ["NAME"] + [c.name.upper() for c in kind.columns if c.priority == 0]
    [row] = table(out)
    assert row == row | {
        "NAME": "gw001",
        "NODEPOOL": "gwpool",
        "VMSS": "",
        "EGRESS-PREFIX": "1.2.3.4/31",
        "ILB-IP": "10.243.0.6",
        "PORT": "6000",
        "READY": "True",
    }


def test_kubectl_get_egressgateway_lists_every_kind(api: Api) -> None:
    api.create(sgc())
    api.create(pod_endpoint())
    api.create(
        {
            "apiVersion": crds.API_VERSION,
            "kind": "GatewayStatus",
            "metadata": {"name": "gwnode-0"},
            "spec": {
                "readyGatewayNamespaces": [
                    {
                        "staticGatewayConfiguration": f"{api.ns}/gw001",
                        "netnsName": "gw-17f83d68-4cab-422d-a3af-ed320a761cee-10_243_0_6",
                    }
                ]
            },
        }
    )
    out = api.cp.kubectl("get", "egressgateway", "-A").stdout
    assert f"staticgatewayconfiguration.{crds.GROUP}/gw001" in out
    assert f"podendpoint.{crds.GROUP}/pod1" in out
    assert f"gatewaystatus.{crds.GROUP}/gwnode-0" in out
    headers = [columns(line) for line in out.splitlines() if line.startswith("NAMESPACE")]
    for kind in (crds.STATIC_GATEWAY_CONFIGURATION, crds.POD_ENDPOINT, crds.GATEWAY_STATUS):
        assert ["NAMESPACE", "NAME"] + [c.name.upper() for c in kind.columns] in headers, headers
    # Each kind prints its own table; the PodEndpoint one carries its printer columns' values.
    sections = re.split(r"\n\s*\n", out.strip())
    pe_rows = [r for sec in sections for r in table(sec) if r["NAMESPACE"] == api.ns and "podendpoint" in r["NAME"]]
    assert [{k: v for k, v in r.items() if k != "AGE"} for r in pe_rows] == [
        {"NAMESPACE": api.ns, "NAME": f"podendpoint.{crds.GROUP}/pod1", "GATEWAY": "gw001", "POD-IP": "10.244.0.5/32"}
    ]


def test_kubectl_explain_shows_the_model_descriptions(control_plane: ControlPlane) -> None:
    out = control_plane.kubectl("explain", "staticgatewayconfiguration.spec").stdout
    flat = " ".join(out.split())
    assert "Desired state of a static egress gateway." in flat
    for name in ("gatewayNodepoolName", "gatewayVmssProfile", "provisionPublicIps", "publicIpPrefixId"):
        assert re.search(rf"^\s+{name}\s+<", out, re.M), f"{name} missing from kubectl explain:\n{out}"
    assert "Attach a public IP prefix to the gateway instances (true)" in flat
    deep = " ".join(control_plane.kubectl("explain", "sgc.spec.gatewayVmssProfile.publicIpPrefixSize").stdout.split())
    assert "Length of the public IP prefix to allocate for the gateway instances" in deep
