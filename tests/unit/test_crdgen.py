"""The checked-in CRD YAML is exactly what the model generates, and has what kubectl users rely on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from egw.__main__ import main, render_crd_yaml
from egw.model import crdgen, crds

pytestmark = pytest.mark.unit

CRD_DIR = Path(__file__).resolve().parents[2] / "charts/kube-egress-gateway/crds"


def test_checked_in_crds_match_the_generator() -> None:
    wanted = crdgen.all_crds()
    present = sorted(p.name for p in CRD_DIR.glob("*.yaml"))
    assert present == sorted(wanted), "run `egw crds` to regenerate"
    for name, doc in wanted.items():
        assert (CRD_DIR / name).read_text() == render_crd_yaml(doc), f"{name} is stale: run `egw crds`"


def test_check_mode_detects_drift(tmp_path: Path) -> None:
    assert main(["crds", "--out", str(tmp_path)]) == 0
    assert main(["crds", "--out", str(tmp_path), "--check"]) == 0
    victim = next(tmp_path.glob("*podendpoints.yaml"))
    victim.write_text(victim.read_text().replace("maxLength: 43", "maxLength: 44"))
    assert main(["crds", "--out", str(tmp_path), "--check"]) == 1
    (tmp_path / "stray.yaml").write_text("x: 1\n")
    assert main(["crds", "--out", str(tmp_path)]) == 0
    assert main(["crds", "--out", str(tmp_path), "--check"]) == 1  # stray file still reported


@pytest.mark.parametrize("kind", crds.KINDS, ids=lambda k: k.kind)
def test_crd_names_and_columns(kind: crds.Kind) -> None:
    doc = yaml.safe_load((CRD_DIR / crdgen.file_name(kind)).read_text())
    spec = doc["spec"]
    assert spec["group"] == "egressgateway.kubernetes.azure.com"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["categories"] == ["egressgateway"]
    assert spec["names"]["shortNames"] == [kind.short_name]
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    assert version["additionalPrinterColumns"][-1]["name"] == "Age"


def _walk(schema: dict, path: str = ""):
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if "items" in schema:
        yield from _walk(schema["items"], f"{path}[]")


@pytest.mark.parametrize("kind", crds.KINDS, ids=lambda k: k.kind)
def test_every_field_has_a_description_and_strings_are_bounded(kind: crds.Kind) -> None:
    root = crdgen.crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(root["properties"]["spec"], ".spec"):
        if not path.endswith("[]"):
            assert node.get("description"), f"{kind.kind}{path} has no description"
        if node.get("type") == "string":
            assert "maxLength" in node, f"{kind.kind}{path} needs maxLength for CEL cost bounds"


def test_sgc_schema_rules() -> None:
    root = crdgen.crd(crds.STATIC_GATEWAY_CONFIGURATION)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec = root["properties"]["spec"]
    rules = {r["message"]: r for r in spec["x-kubernetes-validations"]}
    assert "exactly one of gatewayNodepoolName and gatewayVmssProfile must be set" in rules
    forbid = rules["publicIpPrefixId must be empty when provisionPublicIps is false"]
    assert forbid["fieldPath"] == ".publicIpPrefixId"
    assert spec["properties"]["defaultRoute"]["enum"] == ["azureNetworking", "staticEgressGateway"]
    assert spec["properties"]["defaultRoute"]["default"] == "staticEgressGateway"
    assert spec["properties"]["provisionPublicIps"]["default"] is True
    assert spec["properties"]["gatewayVmssProfile"]["properties"]["publicIpPrefixSize"]["maximum"] == 31
    pe = crdgen.crd(crds.POD_ENDPOINT)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    key_rule = pe["properties"]["podPublicKey"]["x-kubernetes-validations"][0]
    assert key_rule["rule"].startswith("self.matches('^[A-Za-z0-9+/]{42}")
    assert key_rule["message"] == "must be a WireGuard key: 44 characters of standard base64 encoding 32 bytes"
    assert "prefixLength()" in pe["properties"]["podIpAddress"]["x-kubernetes-validations"][0]["rule"]
