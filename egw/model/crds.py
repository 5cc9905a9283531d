"""The five custom resources of group ``egressgateway.kubernetes.azure.com/v1alpha1``.

This module is the single source of truth for the API: the dataclasses below are what every
component parses and writes, and ``egw.model.crdgen`` turns the same declarations into the CRD
YAML under ``charts/kube-egress-gateway/crds/`` (a test fails when the two drift apart).

Field names, JSON keys and semantics follow the seed era of upstream kube-egress-gateway
(``shared/spec/upstream-spec.md`` §2), plus ``GatewayVMConfiguration.status.gatewayVMProfiles`` so gateway
nodes never need Azure credentials, status conditions on the StaticGatewayConfiguration, and summary
counts on GatewayStatus for printer columns. Status keys are lowerCamelCase JSON
(``gatewayServerProfile.publicKey``); the seed document's capitalised spelling is a hand-written example.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from egw.model import checks, schema
from egw.model.checks import Check
from egw.model.errors import FieldError, ValidationError
from egw.model.schema import Rule, api_field

GROUP = "egressgateway.kubernetes.azure.com"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "egressgateway"

DEFAULT_ROUTE_GATEWAY = "staticEgressGateway"
DEFAULT_ROUTE_AZURE = "azureNetworking"


def _ci(word: str) -> str:
    """Case-insensitive regex for a literal word, without inline flags (OpenAPI patterns are ECMA)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)


PREFIX_ID_PATTERN = (
    "^/"
    + _ci("subscriptions")
    + "/[^/]+/"
    + _ci("resourceGroups")
    + "/[^/]+/"
    + _ci("providers")
    + "/"
    + _ci("Microsoft.Network")
    + "/"
    + _ci("publicIPPrefixes")
    + "/[^/]+$"
)
_PREFIX_ID_RE = re.compile(PREFIX_ID_PATTERN)


def _reason_prefix_id(value: Any) -> str | None:
    if not isinstance(value, str) or not _PREFIX_ID_RE.fullmatch(value):
        return (
            "must be a public IP prefix resource ID: /subscriptions/<id>/resourceGroups/<rg>"
            "/providers/Microsoft.Network/publicIPPrefixes/<name>"
        )
    return None


PREFIX_ID = Check({"type": "string", "maxLength": 1024, "pattern": PREFIX_ID_PATTERN}, _reason_prefix_id)

# DNS-1123 subdomain: the name of a StaticGatewayConfiguration referenced by a PodEndpoint.
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_DNS_SUBDOMAIN_RE = re.compile(DNS_SUBDOMAIN_PATTERN)


def _reason_object_name(value: Any) -> str | None:
    if not isinstance(value, str) or not value or len(value) > 253 or not _DNS_SUBDOMAIN_RE.fullmatch(value):
        return "must be a Kubernetes object name (lower-case DNS subdomain, at most 253 characters)"
    return None


OBJECT_NAME = Check(
    {"type": "string", "minLength": 1, "maxLength": 253, "pattern": DNS_SUBDOMAIN_PATTERN}, _reason_object_name
)
NS_NAME_REF = checks.matching(  # "<namespace>/<name>"
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$", 317, "must be <namespace>/<name>"
)
# Any name `ip netns` accepts except "." and ".." (path components); a run of three or more dots is a name.
NETNS_NAME = checks.matching(
    r"^(\.{0,2}[A-Za-z0-9_-]|\.{3})[A-Za-z0-9_.-]*$",
    255,
    "must be a network namespace name ([A-Za-z0-9_.-], not . or .., at most 255 characters)",
    min_length=1,
)


# --------------------------------------------------------------------------------------- shared parts


@dataclass(frozen=True)
class OwnerReference:
    """Reference to the owning object (Kubernetes metav1.OwnerReference)."""

    api_version: str = api_field("apiVersion", "API version of the owner.", required=True)
    kind: str = api_field("kind", "Kind of the owner.", required=True)
    name: str = api_field("name", "Name of the owner.", required=True)
    uid: str = api_field("uid", "UID of the owner.", required=True)
    controller: bool | None = api_field("controller", "True when the owner is the managing controller.")
    block_owner_deletion: bool | None = api_field(
        "blockOwnerDeletion", "True when the owner cannot be deleted before this object."
    )


@dataclass(frozen=True)
class ObjectMeta:
    """The parts of Kubernetes object metadata that egw reads and writes."""

    name: str = api_field("name", "Object name.")
    namespace: str | None = api_field("namespace", "Object namespace.")
    uid: str | None = api_field("uid", "Unique ID assigned by the API server.")
    resource_version: str | None = api_field("resourceVersion", "Opaque version for optimistic concurrency.")
    generation: int | None = api_field("generation", "Spec generation.")
    creation_timestamp: str | None = api_field("creationTimestamp", "Creation time (RFC 3339).")
    deletion_timestamp: str | None = api_field("deletionTimestamp", "Deletion time when deletion is pending.")
    labels: Mapping[str, str] | None = api_field("labels", "Labels.")
    annotations: Mapping[str, str] | None = api_field("annotations", "Annotations.")
    owner_references: tuple[OwnerReference, ...] = api_field("ownerReferences", "Owners.", default=())
    finalizers: tuple[str, ...] = api_field("finalizers", "Finalizers.", default=())


@dataclass(frozen=True)
class ObjectReference:
    """Reference to another object (Kubernetes core/v1 ObjectReference)."""

    api_version: str | None = api_field("apiVersion", "API version of the referent, e.g. v1.")
    kind: str | None = api_field("kind", "Kind of the referent, e.g. Secret.")
    name: str | None = api_field("name", "Name of the referent.")
    namespace: str | None = api_field(
        "namespace", "Namespace of the referent; empty means the namespace of the referring object."
    )
    uid: str | None = api_field("uid", "UID of the referent.")
    resource_version: str | None = api_field("resourceVersion", "Resource version of the referent.")
    field_path: str | None = api_field("fieldPath", "Field within the referent, if any.")


@dataclass(frozen=True)
class Condition:
    """A standard Kubernetes status condition."""

    type: str = api_field("type", "Condition type, e.g. Ready.", check=checks.non_empty(316), required=True)
    status: str = api_field(
        "status", "True, False or Unknown.", check=checks.enum("True", "False", "Unknown"), required=True
    )
    reason: str | None = api_field("reason", "Machine-readable CamelCase reason for the last transition.")
    message: str | None = api_field("message", "Human-readable details of the last transition.")
    last_transition_time: str | None = api_field(
        "lastTransitionTime", "When the condition last changed status (RFC 3339)."
    )
    observed_generation: int | None = api_field(
        "observedGeneration", "The .metadata.generation the condition was computed from."
    )


# ----------------------------------------------------------------------------------- gateway pool spec


@dataclass(frozen=True)
class GatewayVmssProfile:
    """An explicitly named gateway VMSS, instead of an AKS node pool name."""

    vmss_resource_group: str = api_field(
        "vmssResourceGroup",
        "Resource group of the gateway VMSS (same subscription as the cluster).",
        check=checks.non_empty(90),
        required=True,
    )
    vmss_name: str = api_field("vmssName", "Name of the gateway VMSS.", check=checks.non_empty(80), required=True)
    public_ip_prefix_size: int = api_field(
        "publicIpPrefixSize",
        "Length of the public IP prefix to allocate for the gateway instances (Azure accepts 28-31); "
        "the VMSS may have at most 2^(32-size) instances.",
        check=checks.int_range(0, 31),
        required=True,
    )


def _has_one_pool(spec: Any) -> bool:
    return bool(spec.gateway_nodepool_name) != (spec.gateway_vmss_profile is not None)


def _prefix_id_allowed(spec: Any) -> bool:
    return bool(spec.provision_public_ips) or not spec.public_ip_prefix_id


POOL_RULES: tuple[Rule, ...] = (
    Rule(
        cel="(has(self.gatewayNodepoolName) && self.gatewayNodepoolName != '') != has(self.gatewayVmssProfile)",
        message="exactly one of gatewayNodepoolName and gatewayVmssProfile must be set",
        holds=_has_one_pool,
    ),
    Rule(
        cel="self.provisionPublicIps || !has(self.publicIpPrefixId) || self.publicIpPrefixId == ''",
        message="publicIpPrefixId must be empty when provisionPublicIps is false",
        holds=_prefix_id_allowed,
        field_path=".publicIpPrefixId",
    ),
)


@dataclass(frozen=True)
class GatewayPoolSpec:
    """Which gateway VMSS serves the gateway and how its egress IPs are provisioned."""

    RULES: ClassVar[tuple[Rule, ...]] = POOL_RULES

    gateway_nodepool_name: str | None = api_field(
        "gatewayNodepoolName",
        "AKS node pool of the gateway nodes; the VMSS is found by its aks-managed-poolName tag. "
        "Exactly one of gatewayNodepoolName and gatewayVmssProfile must be set.",
        check=checks.max_length(80),
    )
    gateway_vmss_profile: GatewayVmssProfile | None = api_field(
        "gatewayVmssProfile",
        "Explicit gateway VMSS. Exactly one of gatewayNodepoolName and gatewayVmssProfile must be set.",
    )
    provision_public_ips: bool = api_field(
        "provisionPublicIps",
        "Attach a public IP prefix to the gateway instances (true), or egress with their secondary "
        "private IPs (false).",
        required=True,
        default=True,
    )
    public_ip_prefix_id: str | None = api_field(
        "publicIpPrefixId",
        "Resource ID of an existing public IP prefix to use (bring your own); only allowed when "
        "provisionPublicIps is true. Empty: the controller creates and manages a prefix.",
        check=PREFIX_ID,
    )


# ------------------------------------------------------------------------- StaticGatewayConfiguration


@dataclass(frozen=True)
class StaticGatewayConfigurationSpec(GatewayPoolSpec):
    """Desired state of a static egress gateway."""

    default_route: str = api_field(
        "defaultRoute",
        "staticEgressGateway: the pod default route goes through the gateway and excludeCidrs stay on "
        "eth0; azureNetworking: the default route stays on eth0 and only excludeCidrs go through the gateway.",
        check=checks.enum(DEFAULT_ROUTE_AZURE, DEFAULT_ROUTE_GATEWAY),
        default=DEFAULT_ROUTE_GATEWAY,
    )
    exclude_cidrs: tuple[str, ...] = api_field(
        "excludeCidrs",
        "CIDRs that bypass the gateway (defaultRoute staticEgressGateway), or the only CIDRs that use it "
        "(defaultRoute azureNetworking).",
        check=checks.CIDR,
        default=(),
        max_items=256,
    )


@dataclass(frozen=True)
class GatewayServerProfile:
    """Gateway-side WireGuard endpoint that pods connect to."""

    ip: str | None = api_field("ip", "Gateway ILB frontend private IP.", check=checks.IP)
    port: int | None = api_field(
        "port", "Load-balancing rule frontend and backend port, and the WireGuard listen port.", check=checks.PORT
    )
    public_key: str | None = api_field("publicKey", "Gateway WireGuard public key (base64).", check=checks.PUBLIC_KEY)
    private_key_secret_ref: ObjectReference | None = api_field(
        "privateKeySecretRef", "Secret that holds the gateway WireGuard private key."
    )


@dataclass(frozen=True)
class StaticGatewayConfigurationStatus:
    """Observed state of a static egress gateway, written by the controller."""

    egress_ip_prefix: str | None = api_field(
        "egressIpPrefix",
        "Egress source of the pods using this gateway: the public IP prefix (e.g. 1.2.3.4/31), or a "
        "comma-separated list of the gateway instances' private IPs when provisionPublicIps is false.",
        check=checks.EGRESS_PREFIX,
    )
    gateway_server_profile: GatewayServerProfile | None = api_field(
        "gatewayServerProfile", "Gateway-side WireGuard endpoint."
    )
    conditions: tuple[Condition, ...] = api_field(
        "conditions", "Ready when the gateway is fully provisioned.", default=(), max_items=16
    )


# --------------------------------------------------------------------- GatewayLB / GatewayVM (internal)


@dataclass(frozen=True)
class GatewayLBConfigurationSpec(GatewayPoolSpec):
    """Copied from the StaticGatewayConfiguration by the controller; drives the gateway ILB."""


@dataclass(frozen=True)
class GatewayLBConfigurationStatus:
    """ILB frontend and rule port allocated for the gateway."""

    frontend_ip: str | None = api_field("frontendIp", "ILB frontend private IP.", check=checks.IP)
    server_port: int | None = api_field("serverPort", "Load-balancing rule port.", check=checks.PORT)
    egress_ip_prefix: str | None = api_field(
        "egressIpPrefix", "Egress prefix copied from the GatewayVMConfiguration.", check=checks.EGRESS_PREFIX
    )


@dataclass(frozen=True)
class GatewayVMConfigurationSpec(GatewayPoolSpec):
    """Copied from the GatewayLBConfiguration by the controller; drives the gateway VMSS and IP prefix."""


@dataclass(frozen=True)
class GatewayVMProfile:
    """IP addresses of one gateway instance, so gateway nodes need no Azure credentials."""

    node_name: str = api_field(
        "nodeName", "Kubernetes node name (VMSS instance computer name).", check=checks.non_empty(253), required=True
    )
    primary_ip: str | None = api_field("primaryIP", "Primary private IP of the instance.", check=checks.IP)
    secondary_ip: str | None = api_field(
        "secondaryIP", "Secondary private IP of the instance for this gateway (host0 address).", check=checks.IP
    )


@dataclass(frozen=True)
class GatewayVMConfigurationStatus:
    """Egress prefix and per-instance IPs of the gateway VMSS."""

    egress_ip_prefix: str | None = api_field(
        "egressIpPrefix", "Public IP prefix, or comma-separated private IPs.", check=checks.EGRESS_PREFIX
    )
    gateway_vm_profiles: tuple[GatewayVMProfile, ...] = api_field(
        "gatewayVMProfiles", "One entry per gateway instance.", default=(), max_items=1000
    )


# ------------------------------------------------------------------------------------- GatewayStatus


@dataclass(frozen=True)
class GatewayNamespace:
    """A gateway network namespace that is fully provisioned on this node."""

    static_gateway_configuration: str = api_field(
        "staticGatewayConfiguration",
        "<namespace>/<name> of the StaticGatewayConfiguration.",
        check=NS_NAME_REF,
        required=True,
    )
    netns_name: str = api_field(
        "netnsName",
        "Network namespace: gw-<StaticGatewayConfiguration uid>-<ILB IP with dots as underscores>.",
        check=NETNS_NAME,
        required=True,
    )


@dataclass(frozen=True)
class PeerConfiguration:
    """A pod's WireGuard peer that is in place in a gateway namespace on this node."""

    pod_endpoint: str = api_field(
        "podEndpoint", "<namespace>/<name> of the PodEndpoint.", check=NS_NAME_REF, required=True
    )
    netns_name: str = api_field(
        "netnsName", "Gateway network namespace holding the peer.", check=NETNS_NAME, required=True
    )
    public_key: str = api_field("publicKey", "Pod WireGuard public key.", check=checks.PUBLIC_KEY, required=True)


@dataclass(frozen=True)
class GatewayStatusSpec:
    """What the gateway daemon has really configured on this node (read back from the kernel)."""

    ready_gateway_namespaces: tuple[GatewayNamespace, ...] = api_field(
        "readyGatewayNamespaces", "Gateway namespaces fully provisioned on this node.", default=(), max_items=1000
    )
    ready_peer_configurations: tuple[PeerConfiguration, ...] = api_field(
        "readyPeerConfigurations",
        "Pod peers in place on this node (this shard's part when peerShardCount > 1).",
        default=(),
        max_items=20000,
    )
    peer_shard_index: int | None = api_field(
        "peerShardIndex",
        "Which peer shard this object holds: 0 is the object named after the node, i > 0 is <node>.peers-<i>.",
        check=checks.int_range(0, 4095),
    )
    peer_shard_count: int | None = api_field(
        "peerShardCount",
        "Number of objects the ready peers are split over, so each stays small. PodEndpoint <ns>/<name> is "
        'listed in shard crc32("<ns>/<name>") mod peerShardCount.',
        check=checks.int_range(1, 4096),
    )


@dataclass(frozen=True)
class GatewayStatusStatus:
    """Summary counts for printer columns."""

    ready_gateways: int | None = api_field("readyGateways", "Number of ready gateway namespaces.")
    ready_peers: int | None = api_field("readyPeers", "Number of ready pod peers.")
    omitted_peers: int | None = api_field(
        "omittedPeers", "Ready peers left out of the lists because the size bound was reached (normally 0)."
    )


# --------------------------------------------------------------------------------------- PodEndpoint


@dataclass(frozen=True)
class PodEndpointSpec:
    """Pod-side WireGuard configuration that gateways add as a peer."""

    static_gateway_configuration: str = api_field(
        "staticGatewayConfiguration",
        "Name of the StaticGatewayConfiguration in the pod's namespace.",
        check=OBJECT_NAME,
        required=True,
    )
    pod_ip_address: str = api_field(
        "podIpAddress",
        "Pod IP as a single-host CIDR (a.b.c.d/32 or x::y/128).",
        check=checks.HOST_PREFIX,
        required=True,
    )
    pod_public_key: str = api_field(
        "podPublicKey", "Pod WireGuard public key (base64).", check=checks.PUBLIC_KEY, required=True
    )


@dataclass(frozen=True)
class EmptyStatus:
    """Unused; present so the status subresource exists."""


# ------------------------------------------------------------------------------------------- kinds


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str
    description: str
    priority: int = 0


@dataclass(frozen=True)
class Kind:
    """Static facts about one CRD kind."""

    kind: str
    plural: str
    short_name: str
    description: str
    spec: type
    status: type
    columns: tuple[PrinterColumn, ...]

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


AGE = PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since creation.")

STATIC_GATEWAY_CONFIGURATION = Kind(
    "StaticGatewayConfiguration",
    "staticgatewayconfigurations",
    "sgc",
    "A static egress gateway: pods annotated kubernetes.azure.com/static-gateway-configuration=<name> "
    "egress through WireGuard to the gateway nodes, which masquerade behind a fixed egress IP prefix.",
    StaticGatewayConfigurationSpec,
    StaticGatewayConfigurationStatus,
    (
        PrinterColumn("Nodepool", "string", ".spec.gatewayNodepoolName", "Gateway AKS node pool."),
        PrinterColumn("VMSS", "string", ".spec.gatewayVmssProfile.vmssName", "Gateway VMSS."),
        PrinterColumn("Egress-Prefix", "string", ".status.egressIpPrefix", "Egress IP prefix or private IPs."),
        PrinterColumn("ILB-IP", "string", ".status.gatewayServerProfile.ip", "Gateway ILB frontend IP."),
        PrinterColumn("Port", "integer", ".status.gatewayServerProfile.port", "WireGuard / LB rule port."),
        PrinterColumn("Ready", "string", '.status.conditions[?(@.type=="Ready")].status', "Fully provisioned."),
        AGE,
    ),
)
GATEWAY_LB_CONFIGURATION = Kind(
    "GatewayLBConfiguration",
    "gatewaylbconfigurations",
    "glbc",
    "Internal: the gateway ILB frontend, rule and probe of one StaticGatewayConfiguration.",
    GatewayLBConfigurationSpec,
    GatewayLBConfigurationStatus,
    (
        PrinterColumn("Frontend-IP", "string", ".status.frontendIp", "ILB frontend IP."),
        PrinterColumn("Port", "integer", ".status.serverPort", "LB rule port."),
        PrinterColumn("Egress-Prefix", "string", ".status.egressIpPrefix", "Egress IP prefix."),
        AGE,
    ),
)
GATEWAY_VM_CONFIGURATION = Kind(
    "GatewayVMConfiguration",
    "gatewayvmconfigurations",
    "gvmc",
    "Internal: the gateway VMSS IP configurations and public IP prefix of one StaticGatewayConfiguration.",
    GatewayVMConfigurationSpec,
    GatewayVMConfigurationStatus,
    (
        PrinterColumn("Egress-Prefix", "string", ".status.egressIpPrefix", "Egress IP prefix."),
        AGE,
    ),
)
GATEWAY_STATUS = Kind(
    "GatewayStatus",
    "gatewaystatuses",
    "gws",
    "Per gateway node (named after the node): the gateway namespaces and pod peers really in place.",
    GatewayStatusSpec,
    GatewayStatusStatus,
    (
        PrinterColumn("Ready-Gateways", "integer", ".status.readyGateways", "Ready gateway namespaces."),
        PrinterColumn("Ready-Peers", "integer", ".status.readyPeers", "Ready pod peers."),
        AGE,
    ),
)
POD_ENDPOINT = Kind(
    "PodEndpoint",
    "podendpoints",
    "pe",
    "Pod-side WireGuard configuration of one annotated pod (same name and namespace as the pod).",
    PodEndpointSpec,
    EmptyStatus,
    (
        PrinterColumn("Gateway", "string", ".spec.staticGatewayConfiguration", "StaticGatewayConfiguration."),
        PrinterColumn("Pod-IP", "string", ".spec.podIpAddress", "Pod IP."),
        AGE,
    ),
)

KINDS: tuple[Kind, ...] = (
    STATIC_GATEWAY_CONFIGURATION,
    GATEWAY_LB_CONFIGURATION,
    GATEWAY_VM_CONFIGURATION,
    GATEWAY_STATUS,
    POD_ENDPOINT,
)


# -------------------------------------------------------------------------------------- resources


@dataclass(frozen=True)
class Resource:
    """Common shape: metadata + spec + status. Subclasses fix KIND and the two types."""

    KIND: ClassVar[Kind]

    metadata: ObjectMeta
    spec: Any
    status: Any = None

    @classmethod
    def from_dict(cls, data: Any) -> Any:
        """Parse an API object; raises ValidationError naming every bad field and its value."""
        errors: list[FieldError] = []
        kind = cls.KIND
        if not isinstance(data, dict):
            raise ValidationError([FieldError("", data, "must be an object")], kind.kind)
        if data.get("kind", kind.kind) != kind.kind:
            errors.append(FieldError("kind", data.get("kind"), f"must be {kind.kind}"))
        if data.get("apiVersion", API_VERSION) != API_VERSION:
            errors.append(FieldError("apiVersion", data.get("apiVersion"), f"must be {API_VERSION}"))
        parts: dict[str, Any] = {}
        for key, tp, default in (("metadata", ObjectMeta, {}), ("spec", kind.spec, {}), ("status", kind.status, None)):
            raw = data.get(key, default)
            if raw is None:
                parts[key] = None
                continue
            try:
                parts[key] = schema.from_dict(tp, raw, key)
            except ValidationError as exc:
                errors.extend(exc.errors)
        if errors:
            raise ValidationError(errors, kind.kind)
        return cls(**parts)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": self.KIND.kind,
            "metadata": schema.to_dict(self.metadata),
            "spec": schema.to_dict(self.spec),
        }
        if self.status is not None:
            out["status"] = schema.to_dict(self.status)
        return out

    @property
    def key(self) -> str:
        """``<namespace>/<name>``, the form used in GatewayStatus and logs."""
        return f"{self.metadata.namespace}/{self.metadata.name}"


@dataclass(frozen=True)
class StaticGatewayConfiguration(Resource):
    KIND: ClassVar[Kind] = STATIC_GATEWAY_CONFIGURATION
    spec: StaticGatewayConfigurationSpec
    status: StaticGatewayConfigurationStatus | None = None


@dataclass(frozen=True)
class GatewayLBConfiguration(Resource):
    KIND: ClassVar[Kind] = GATEWAY_LB_CONFIGURATION
    spec: GatewayLBConfigurationSpec
    status: GatewayLBConfigurationStatus | None = None


@dataclass(frozen=True)
class GatewayVMConfiguration(Resource):
    KIND: ClassVar[Kind] = GATEWAY_VM_CONFIGURATION
    spec: GatewayVMConfigurationSpec
    status: GatewayVMConfigurationStatus | None = None


@dataclass(frozen=True)
class GatewayStatus(Resource):
    KIND: ClassVar[Kind] = GATEWAY_STATUS
    spec: GatewayStatusSpec
    status: GatewayStatusStatus | None = None


@dataclass(frozen=True)
class PodEndpoint(Resource):
    KIND: ClassVar[Kind] = POD_ENDPOINT
    spec: PodEndpointSpec
    status: EmptyStatus | None = None


RESOURCES: tuple[type[Resource], ...] = (
    StaticGatewayConfiguration,
    GatewayLBConfiguration,
    GatewayVMConfiguration,
    GatewayStatus,
    PodEndpoint,
)


def is_ready(sgc: StaticGatewayConfiguration) -> bool:
    """The daemon's readiness rule: prefix, ILB IP, port, public key and secret ref all present."""
    st = sgc.status
    if st is None or not st.egress_ip_prefix or st.gateway_server_profile is None:
        return False
    gsp = st.gateway_server_profile
    return bool(gsp.ip and gsp.port and gsp.public_key and gsp.private_key_secret_ref is not None)
