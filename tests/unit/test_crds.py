"""The CRD model: round trips, every validation rule with a good and a bad value, error messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from egw.model import crds
from egw.model.errors import ValidationError

pytestmark = pytest.mark.unit

KEY_A = "aGVsbG8td29ybGQtaGVsbG8td29ybGQtaGVsbG8tMTI="  # 32 bytes
KEY_B = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
PREFIX_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
    "/providers/Microsoft.Network/publicIPPrefixes/egress"
)


def sgc_dict(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"gatewayNodepoolName": "gwpool"}
    base.update(spec)
    return {
        "apiVersion": crds.API_VERSION,
        "kind": "StaticGatewayConfiguration",
        "metadata": {"name": "gw001", "namespace": "default", "uid": "17f83d68-4cab-422d-a3af-ed320a761cee"},
        "spec": {k: v for k, v in base.items() if v is not None},
    }


SEED_STATUS = {
    "gatewayServerProfile": {
        "privateKeySecretRef": {"apiVersion": "v1", "kind": "Secret", "name": "gw001"},
        "publicKey": KEY_A,
        "ip": "10.243.0.6",
        "port": 6000,
    },
    "egressIpPrefix": "1.2.3.4/31",
}


def errors_of(cls: type[crds.Resource], data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        cls.from_dict(data)
    return [str(e) for e in info.value.errors]


# ------------------------------------------------------------------------------------------ round trips


def test_seed_sgc_round_trips_with_defaults_filled() -> None:
    data = sgc_dict()
    data["status"] = copy.deepcopy(SEED_STATUS)
    sgc = crds.StaticGatewayConfiguration.from_dict(data)
    assert sgc.spec.default_route == "staticEgressGateway"
    assert sgc.spec.provision_public_ips is True
    assert sgc.status.gateway_server_profile.port == 6000
    assert sgc.key == "default/gw001"
    assert crds.is_ready(sgc)
    out = sgc.to_dict()
    assert out["status"] == SEED_STATUS
    assert out["spec"] == {
        "gatewayNodepoolName": "gwpool",
        "provisionPublicIps": True,
        "defaultRoute": "staticEgressGateway",
    }
    assert crds.StaticGatewayConfiguration.from_dict(out) == sgc


def test_vmss_profile_sgc_round_trips() -> None:
    data = sgc_dict(
        gatewayNodepoolName=None,
        gatewayVmssProfile={"vmssResourceGroup": "rg", "vmssName": "gw", "publicIpPrefixSize": 31},
        defaultRoute="azureNetworking",
        excludeCidrs=["10.0.0.0/8", "fd00::/64"],
        publicIpPrefixId=PREFIX_ID,
    )
    sgc = crds.StaticGatewayConfiguration.from_dict(data)
    assert sgc.spec.gateway_vmss_profile == crds.GatewayVmssProfile("rg", "gw", 31)
    assert sgc.spec.exclude_cidrs == ("10.0.0.0/8", "fd00::/64")
    assert crds.StaticGatewayConfiguration.from_dict(sgc.to_dict()) == sgc
    assert not crds.is_ready(sgc)


def test_every_kind_round_trips() -> None:
    samples: list[tuple[type[crds.Resource], dict[str, Any], dict[str, Any] | None]] = [
        (
            crds.GatewayLBConfiguration,
            {"gatewayNodepoolName": "p", "provisionPublicIps": True},
            {"frontendIp": "10.243.0.6", "serverPort": 6000, "egressIpPrefix": "1.2.3.4/31"},
        ),
        (
            crds.GatewayVMConfiguration,
            {"gatewayNodepoolName": "p", "provisionPublicIps": False},
            {
                "egressIpPrefix": "10.0.1.8,10.0.1.9",
                "gatewayVMProfiles": [{"nodeName": "gw-0", "primaryIP": "10.243.0.4", "secondaryIP": "10.243.0.7"}],
            },
        ),
        (
            crds.GatewayStatus,
            {
                "readyGatewayNamespaces": [
                    {
                        "staticGatewayConfiguration": "default/gw001",
                        "netnsName": "gw-17f83d68-4cab-422d-a3af-ed320a761cee-10_243_0_6",
                    }
                ],
                "readyPeerConfigurations": [
                    {
                        "podEndpoint": "default/pod-a",
                        "netnsName": "gw-17f83d68-4cab-422d-a3af-ed320a761cee-10_243_0_6",
                        "publicKey": KEY_B,
                    }
                ],
            },
            {"readyGateways": 1, "readyPeers": 1},
        ),
        (
            crds.PodEndpoint,
            {"staticGatewayConfiguration": "gw001", "podIpAddress": "10.244.0.20/32", "podPublicKey": KEY_B},
            {},
        ),
    ]
    for cls, spec, status in samples:
        data: dict[str, Any] = {
            "apiVersion": crds.API_VERSION,
            "kind": cls.KIND.kind,
            "metadata": {"name": "x", "namespace": "ns"},
            "spec": spec,
        }
        if status is not None:
            data["status"] = status
        obj = cls.from_dict(data)
        assert obj.to_dict() == data, cls.KIND.kind
        assert cls.from_dict(obj.to_dict()) == obj


def test_metadata_owner_references_parse() -> None:
    data = sgc_dict()
    data["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u", "controller": True}
    ]
    data["metadata"]["labels"] = {"a": "b"}
    sgc = crds.StaticGatewayConfiguration.from_dict(data)
    assert sgc.metadata.owner_references[0].controller is True
    assert sgc.metadata.labels == {"a": "b"}
    assert sgc.to_dict()["metadata"]["ownerReferences"][0]["kind"] == "Pod"


# ---------------------------------------------------------------------------------- validation rules

BAD_SGC_SPECS = [
    # (spec overrides, expected substring: field path and value)
    ({"gatewayNodepoolName": None}, 'spec: invalid value "<object>": exactly one of gatewayNodepoolName'),
    (
        {"gatewayVmssProfile": {"vmssResourceGroup": "rg", "vmssName": "v", "publicIpPrefixSize": 31}},
        "exactly one of gatewayNodepoolName and gatewayVmssProfile must be set",
    ),
    (
        {
            "gatewayNodepoolName": None,
            "gatewayVmssProfile": {"vmssResourceGroup": "rg", "vmssName": "v", "publicIpPrefixSize": 32},
        },
        "spec.gatewayVmssProfile.publicIpPrefixSize: invalid value 32: must be between 0 and 31",
    ),
    (
        {
            "gatewayNodepoolName": None,
            "gatewayVmssProfile": {"vmssResourceGroup": "", "vmssName": "v", "publicIpPrefixSize": 30},
        },
        'spec.gatewayVmssProfile.vmssResourceGroup: invalid value "": must be a non-empty string',
    ),
    (
        {"gatewayNodepoolName": None, "gatewayVmssProfile": {"vmssName": "v", "publicIpPrefixSize": 30}},
        "spec.gatewayVmssProfile.vmssResourceGroup: invalid value None: required field is missing",
    ),
    ({"defaultRoute": "viaMoon"}, 'spec.defaultRoute: invalid value "viaMoon": must be one of'),
    (
        {"excludeCidrs": ["10.0.0.0/8", "10.1.0.0/33"]},
        'spec.excludeCidrs[1]: invalid value "10.1.0.0/33": must be a CIDR',
    ),
    ({"excludeCidrs": "10.0.0.0/8"}, 'spec.excludeCidrs: invalid value "10.0.0.0/8": must be a list'),
    (
        {"provisionPublicIps": False, "publicIpPrefixId": PREFIX_ID},
        f'spec.publicIpPrefixId: invalid value "{PREFIX_ID}": publicIpPrefixId must be empty when provisionPublicIps',
    ),
    (
        {"publicIpPrefixId": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb"},
        'spec.publicIpPrefixId: invalid value "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Network'
        '/loadBalancers/lb": must be a public IP prefix resource ID',
    ),
    ({"provisionPublicIps": "yes"}, 'spec.provisionPublicIps: invalid value "yes": must be a boolean'),
]


@pytest.mark.parametrize(("spec", "expected"), BAD_SGC_SPECS)
def test_bad_sgc_spec_is_rejected_naming_field_and_value(spec: dict[str, Any], expected: str) -> None:
    errs = errors_of(crds.StaticGatewayConfiguration, sgc_dict(**spec))
    assert any(expected in e for e in errs), errs


GOOD_SGC_SPECS = [
    {"defaultRoute": "azureNetworking"},
    {"excludeCidrs": ["169.254.169.254/32", "10.0.0.0/8"]},
    {"provisionPublicIps": False},
    {
        "provisionPublicIps": True,
        "publicIpPrefixId": PREFIX_ID.upper().replace("/SUBSCRIPTIONS", "/subscriptions"),
    },
    {
        "gatewayNodepoolName": None,
        "gatewayVmssProfile": {"vmssResourceGroup": "rg", "vmssName": "v", "publicIpPrefixSize": 0},
    },
    {
        "gatewayNodepoolName": "",
        "gatewayVmssProfile": {"vmssResourceGroup": "rg", "vmssName": "v", "publicIpPrefixSize": 28},
    },
]


@pytest.mark.parametrize("spec", GOOD_SGC_SPECS)
def test_good_sgc_spec_is_accepted(spec: dict[str, Any]) -> None:
    crds.StaticGatewayConfiguration.from_dict(sgc_dict(**spec))


def test_all_errors_are_reported_at_once() -> None:
    errs = errors_of(crds.StaticGatewayConfiguration, sgc_dict(defaultRoute="x", excludeCidrs=["a", "b"]))
    assert len(errs) == 3


def test_kind_and_api_version_are_checked() -> None:
    data = sgc_dict()
    data["kind"] = "PodEndpoint"
    data["apiVersion"] = "v1"
    errs = errors_of(crds.StaticGatewayConfiguration, data)
    assert 'kind: invalid value "PodEndpoint": must be StaticGatewayConfiguration' in errs
    assert 'apiVersion: invalid value "v1": must be egressgateway.kubernetes.azure.com/v1alpha1' in errs


def pe_dict(**spec: Any) -> dict[str, Any]:
    base = {"staticGatewayConfiguration": "gw001", "podIpAddress": "10.244.0.20/32", "podPublicKey": KEY_B}
    base.update(spec)
    return {
        "apiVersion": crds.API_VERSION,
        "kind": "PodEndpoint",
        "metadata": {"name": "pod-a", "namespace": "default"},
        "spec": {k: v for k, v in base.items() if v is not None},
    }


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"podIpAddress": "10.244.0.0/24"},
            'spec.podIpAddress: invalid value "10.244.0.0/24": must be a single-host CIDR (/32 or /128)',
        ),
        (
            {"podIpAddress": "10.244.0.20"},
            'spec.podIpAddress: invalid value "10.244.0.20": must be a single-host',
        ),
        ({"podIpAddress": "fd00::1/64"}, 'spec.podIpAddress: invalid value "fd00::1/64"'),
        ({"podPublicKey": "abc"}, 'spec.podPublicKey: invalid value "abc": must be a WireGuard key'),
        ({"podPublicKey": KEY_B[:-2] + "b="}, "spec.podPublicKey"),
        (
            {"staticGatewayConfiguration": "Bad_Name"},
            'spec.staticGatewayConfiguration: invalid value "Bad_Name": must be a Kubernetes object name',
        ),
        (
            {"staticGatewayConfiguration": None},
            "spec.staticGatewayConfiguration: invalid value None: required",
        ),
    ],
)
def test_bad_pod_endpoint(spec: dict[str, Any], expected: str) -> None:
    errs = errors_of(crds.PodEndpoint, pe_dict(**spec))
    assert any(expected in e for e in errs), errs


@pytest.mark.parametrize("ip", ["10.244.0.20/32", "fd00::20/128"])
def test_good_pod_endpoint(ip: str) -> None:
    assert crds.PodEndpoint.from_dict(pe_dict(podIpAddress=ip)).spec.pod_ip_address == ip


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            {"gatewayServerProfile": {"port": 0}},
            "status.gatewayServerProfile.port: invalid value 0: must be between 1",
        ),
        ({"gatewayServerProfile": {"port": 70000}}, "status.gatewayServerProfile.port: invalid value 70000"),
        (
            {"gatewayServerProfile": {"ip": "10.243.0"}},
            'status.gatewayServerProfile.ip: invalid value "10.243.0"',
        ),
        (
            {"gatewayServerProfile": {"publicKey": "x"}},
            'status.gatewayServerProfile.publicKey: invalid value "x"',
        ),
        ({"egressIpPrefix": "1.2.3.4/40"}, 'status.egressIpPrefix: invalid value "1.2.3.4/40"'),
        (
            {"conditions": [{"type": "Ready", "status": "Maybe"}]},
            'status.conditions[0].status: invalid value "Maybe"',
        ),
    ],
)
def test_bad_sgc_status(status: dict[str, Any], expected: str) -> None:
    data = sgc_dict()
    data["status"] = status
    errs = errors_of(crds.StaticGatewayConfiguration, data)
    assert any(expected in e for e in errs), errs


def test_gateway_status_entries_are_checked() -> None:
    data = {
        "apiVersion": crds.API_VERSION,
        "kind": "GatewayStatus",
        "metadata": {"name": "n"},
        "spec": {"readyGatewayNamespaces": [{"staticGatewayConfiguration": "nosl", "netnsName": "a/b"}]},
    }
    errs = errors_of(crds.GatewayStatus, data)
    assert 'spec.readyGatewayNamespaces[0].staticGatewayConfiguration: invalid value "nosl"' in errs[0]
    assert 'spec.readyGatewayNamespaces[0].netnsName: invalid value "a/b"' in errs[1]


@pytest.mark.parametrize(
    ("ref", "netns", "bad"),
    [
        ("Ns/gw", "gw-x", "staticGatewayConfiguration"),  # upper case is no namespace name
        ("ns/gw", "..", "netnsName"),
        ("ns/gw", ".", "netnsName"),
    ],
)
def test_gateway_status_names_follow_the_schema_patterns(ref: str, netns: str, bad: str) -> None:
    data = {
        "apiVersion": crds.API_VERSION,
        "kind": "GatewayStatus",
        "metadata": {"name": "n"},
        "spec": {"readyGatewayNamespaces": [{"staticGatewayConfiguration": ref, "netnsName": netns}]},
    }
    [err] = errors_of(crds.GatewayStatus, data)
    assert err.startswith(f"spec.readyGatewayNamespaces[0].{bad}: invalid value")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("primaryIP", "x", 'status.gatewayVMProfiles[0].primaryIP: invalid value "x"'),
        ("nodeName", "", 'status.gatewayVMProfiles[0].nodeName: invalid value ""'),
    ],
)
def test_vm_profiles_are_checked(field: str, value: str, expected: str) -> None:
    prof = {"nodeName": "gw-0", "primaryIP": "10.0.0.4", field: value}
    data = {
        "apiVersion": crds.API_VERSION,
        "kind": "GatewayVMConfiguration",
        "metadata": {"name": "n"},
        "spec": {"gatewayNodepoolName": "p"},
        "status": {"gatewayVMProfiles": [prof]},
    }
    assert any(expected in e for e in errors_of(crds.GatewayVMConfiguration, data))


def test_not_an_object() -> None:
    with pytest.raises(ValidationError, match="must be an object"):
        crds.PodEndpoint.from_dict(["x"])
    data = pe_dict()
    data["spec"] = "x"
    assert errors_of(crds.PodEndpoint, data) == ['spec: invalid value "x": must be an object']


def test_is_ready_needs_every_field() -> None:
    for missing in ("ip", "port", "publicKey", "privateKeySecretRef"):
        data = sgc_dict()
        data["status"] = copy.deepcopy(SEED_STATUS)
        del data["status"]["gatewayServerProfile"][missing]
        assert not crds.is_ready(crds.StaticGatewayConfiguration.from_dict(data)), missing
    data = sgc_dict()
    data["status"] = {k: v for k, v in SEED_STATUS.items() if k != "egressIpPrefix"}
    assert not crds.is_ready(crds.StaticGatewayConfiguration.from_dict(data))
