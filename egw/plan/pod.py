"""Pod-side desired state for a pod that uses a static egress gateway (pure; upstream-spec.md §5.4-§5.5).

Called by ``egw.cni.plugin`` for ADD and CHECK. Input: the pod's IPv4 (from prevResult), what the pod
netns looks like now (eth0's link-local IPv6 and the IPv4 routes on eth0/wg0 in the main table and in
table 8738) and the gateway facts cni-manager read from the StaticGatewayConfiguration. Output: a
:class:`PodPlan` — the WireGuard device, the routes to write and to remove, the fwmark rule, the
mangle rules and the sysctls — that produces exactly the seed's pod view::

    default via inet6 fe80::1 dev wg0
    10.244.0.1 dev eth0 scope link
    0:      from all lookup local
    32765:  from all fwmark 0x2222 lookup 8738
    -A PREROUTING -i eth0 -j MARK --set-xmark 0x2222/0xffffffff
    -A PREROUTING -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff
    -A OUTPUT -m connmark --mark 0x2222 -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff

Invariants:
* Only IPv4 is steered; IPv6 routes are never touched (the seed's ``ip route`` lists IPv4 only).
* The plan is computed from observation, so a retried ADD in the same netns (where the original
  default route already moved to table 8738) yields the same plan: ADD is idempotent.
* With ``staticEgressGateway`` every main-table IPv4 route on eth0 except the gateway host route and
  the exception routes is removed (upstream behaviour, spec §9.12): intra-cluster reachability comes
  from the exception CIDRs (SGC ``excludeCidrs`` + the node-level list). With ``azureNetworking``
  eth0's routes are kept and only the SGC's ``excludeCidrs`` go to wg0; the node-level list is not
  added (it would send node traffic *into* the tunnel; upstream PR #1128).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from egw.model import crds

WG_IFNAME = "wg0"
WG_MTU = 1420
FWMARK = 0x2222
ROUTE_TABLE = 8738
MAIN_TABLE = 254
RULE_PRIORITY = 32765
GATEWAY_LINK_LOCAL = ipaddress.IPv6Address("fe80::1")
ALLOWED_IPS = ("0.0.0.0/0", "::/0")
DEFAULT_V4 = ipaddress.IPv4Network("0.0.0.0/0")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class PlanError(ValueError):
    """The pod netns or the gateway facts do not allow a plan (e.g. no default route on eth0)."""


@dataclass(frozen=True)
class Gateway:
    """What the pod needs to know about its gateway, frozen at ADD time (spec §5.10)."""

    endpoint: IPAddress
    port: int
    public_key: str
    exclude_cidrs: tuple[IPNetwork, ...] = ()
    default_route: str = crds.DEFAULT_ROUTE_GATEWAY

    @property
    def endpoint_text(self) -> str:
        host = f"[{self.endpoint}]" if self.endpoint.version == 6 else str(self.endpoint)
        return f"{host}:{self.port}"


@dataclass(frozen=True, order=True)
class Route:
    """One IPv4 route in the pod netns. ``gateway`` IPv6 with an IPv4 ``dst`` is an RTA_VIA next hop."""

    table: int
    dst: ipaddress.IPv4Network
    dev: str
    gateway: IPAddress | None = None
    scope: str = "universe"  # "universe" or "link"
    proto: str = "boot"  # "boot", "static" or "kernel": informational, not part of equality for diffs

    @property
    def key(self) -> tuple[int, ipaddress.IPv4Network]:
        return (self.table, self.dst)

    def same_path(self, other: Route) -> bool:
        return (self.dev, self.gateway, self.scope) == (other.dev, other.gateway, other.scope)

    def __str__(self) -> str:
        dst = (
            "default"
            if self.dst == DEFAULT_V4
            else (str(self.dst.network_address) if self.dst.prefixlen == 32 else str(self.dst))
        )
        via = ""
        if self.gateway is not None:
            via = f" via inet6 {self.gateway}" if self.gateway.version == 6 else f" via {self.gateway}"
        scope = " scope link" if self.scope == "link" else ""
        proto = " proto static" if self.proto == "static" else ""
        table = "" if self.table == MAIN_TABLE else f" table {self.table}"
        return f"{dst}{via} dev {self.dev}{proto}{scope}{table}"


@dataclass(frozen=True)
class Rule:
    priority: int
    fwmark: int
    table: int

    def __str__(self) -> str:
        return f"{self.priority}: from all fwmark {self.fwmark:#x} lookup {self.table}"


@dataclass(frozen=True)
class PodNetns:
    """Observed state of the pod netns that the plan depends on."""

    eth: str
    link_local: ipaddress.IPv6Interface | None
    routes: tuple[Route, ...]  # IPv4 routes on eth and on wg0, main table and ROUTE_TABLE


@dataclass(frozen=True)
class PodPlan:
    pod_ip: ipaddress.IPv4Interface
    eth: str
    wg_ifname: str
    mtu: int
    wg_address: ipaddress.IPv6Interface
    peer_public_key: str
    peer_endpoint: str
    allowed_ips: tuple[str, ...]
    original_gateway: ipaddress.IPv4Address
    routes: tuple[Route, ...]  # full desired set, main table + ROUTE_TABLE
    add_routes: tuple[Route, ...]  # missing or different: write with replace
    remove_routes: tuple[Route, ...]  # observed, ours to remove
    rule: Rule
    mangle_rules: tuple[str, ...]
    sysctls: tuple[tuple[str, str], ...]

    @property
    def endpoint_allowed_ip(self) -> str:
        """The PodEndpoint's podIpAddress: the pod IPv4 as a /32."""
        return f"{self.pod_ip.ip}/32"


def mangle_rules(eth: str) -> tuple[str, ...]:
    """The three rules that send replies to connections that came in on eth0 back out of eth0.

    Written exactly as ``iptables-save`` prints them, so presence is a line comparison and the same
    lines are valid iptables-restore input. ``eth`` was validated as an interface name (no blanks).
    """
    mark = f"{FWMARK:#x}/0xffffffff"
    return (
        f"-A PREROUTING -i {eth} -j MARK --set-xmark {mark}",
        "-A PREROUTING -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff",
        f"-A OUTPUT -m connmark --mark {FWMARK:#x} -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff",
    )


def original_gateway(ns: PodNetns) -> ipaddress.IPv4Address:
    """The main plugin's IPv4 default gateway on eth0: in the main table, or (retried ADD) in table 8738."""
    for table in (MAIN_TABLE, ROUTE_TABLE):
        for r in ns.routes:
            if (
                r.table == table
                and r.dst == DEFAULT_V4
                and r.dev == ns.eth
                and isinstance(r.gateway, ipaddress.IPv4Address)
            ):
                return r.gateway
    raise PlanError(f"no IPv4 default route via a gateway on {ns.eth} in the pod netns")


def exception_cidrs(gw: Gateway, node_excluded: Iterable[IPNetwork]) -> tuple[ipaddress.IPv4Network, ...]:
    """IPv4 exception CIDRs in a stable order, deduplicated; node-level ones only with the gateway default."""
    items: list[IPNetwork] = list(gw.exclude_cidrs)
    if gw.default_route != crds.DEFAULT_ROUTE_AZURE:
        items.extend(node_excluded)
    out: list[ipaddress.IPv4Network] = []
    for net in items:
        if isinstance(net, ipaddress.IPv4Network) and net.prefixlen > 0 and net not in out:
            out.append(net)
    return tuple(out)


def desired_routes(
    eth: str, orig_gw: ipaddress.IPv4Address, gw: Gateway, node_excluded: Iterable[IPNetwork]
) -> tuple[Route, ...]:
    via_wg = GATEWAY_LINK_LOCAL
    out = [Route(ROUTE_TABLE, DEFAULT_V4, eth, orig_gw)]
    cidrs = exception_cidrs(gw, node_excluded)
    if gw.default_route == crds.DEFAULT_ROUTE_AZURE:
        out.extend(Route(MAIN_TABLE, c, WG_IFNAME, via_wg, proto="static") for c in cidrs)
    else:
        out.append(Route(MAIN_TABLE, ipaddress.IPv4Network(f"{orig_gw}/32"), eth, None, scope="link"))
        out.append(Route(MAIN_TABLE, DEFAULT_V4, WG_IFNAME, via_wg))
        out.extend(Route(MAIN_TABLE, c, eth, orig_gw, proto="static") for c in cidrs)
    return tuple(out)


def _ours_to_remove(observed: Route, eth: str, default_route: str) -> bool:
    if observed.table == ROUTE_TABLE or observed.dev == WG_IFNAME:
        return True
    # Route surgery on eth0 happens only when the gateway carries the default route.
    return observed.dev == eth and observed.table == MAIN_TABLE and default_route != crds.DEFAULT_ROUTE_AZURE


def diff_routes(
    desired: Iterable[Route], observed: Iterable[Route], eth: str, default_route: str
) -> tuple[tuple[Route, ...], tuple[Route, ...]]:
    """(routes to write with replace, observed routes to delete) — keyed by (table, dst)."""
    want = {r.key: r for r in desired}
    have = {r.key: r for r in observed}
    add = tuple(sorted(r for k, r in want.items() if k not in have or not have[k].same_path(r)))
    remove = tuple(sorted(r for k, r in have.items() if k not in want and _ours_to_remove(r, eth, default_route)))
    return add, remove


def plan_pod(
    pod_ip: ipaddress.IPv4Interface,
    ns: PodNetns,
    gw: Gateway,
    node_excluded: Iterable[IPNetwork] = (),
) -> PodPlan:
    """Desired pod netns state for ADD/CHECK; raises PlanError when eth0 lacks what the design needs."""
    if ns.link_local is None:
        raise PlanError(f"{ns.eth} has no IPv6 link-local address (IPv6 must be enabled in the pod netns)")
    if not ns.link_local.ip.is_link_local:
        raise PlanError(f"{ns.eth} address {ns.link_local} is not link-local")
    orig_gw = original_gateway(ns)
    routes = desired_routes(ns.eth, orig_gw, gw, node_excluded)
    add, remove = diff_routes(routes, ns.routes, ns.eth, gw.default_route)
    return PodPlan(
        pod_ip=pod_ip,
        eth=ns.eth,
        wg_ifname=WG_IFNAME,
        mtu=WG_MTU,
        wg_address=ipaddress.IPv6Interface(f"{ns.link_local.ip}/64"),
        peer_public_key=gw.public_key,
        peer_endpoint=gw.endpoint_text,
        allowed_ips=ALLOWED_IPS,
        original_gateway=orig_gw,
        routes=routes,
        add_routes=add,
        remove_routes=remove,
        rule=Rule(RULE_PRIORITY, FWMARK, ROUTE_TABLE),
        mangle_rules=mangle_rules(ns.eth),
        sysctls=(
            ("net/ipv4/conf/all/rp_filter", "2"),
            (f"net/ipv4/conf/{ns.eth}/rp_filter", "2"),
        ),
    )


def check_plan(
    plan: PodPlan, observed_routes: Iterable[Route], rules: Iterable[Rule], mangle: Iterable[str]
) -> list[str]:
    """What differs between the plan and the observed pod netns (CHECK); empty when healthy."""
    problems = [
        f"route missing or different: {r}"
        for r in diff_routes(plan.routes, observed_routes, plan.eth, crds.DEFAULT_ROUTE_GATEWAY)[0]
    ]
    if plan.rule not in set(rules):
        problems.append(f"ip rule missing: {plan.rule}")
    have = set(mangle)
    problems.extend(f"mangle rule missing: {line}" for line in plan.mangle_rules if line not in have)
    return problems
