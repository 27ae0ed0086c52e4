"""The deployment page's KubeRay example is a manifest that parses, and its config is one
ttsframe accepts; the page says how to keep Ray's ports (which run code for whoever
reaches them) off the network, and its NetworkPolicy example fits the example cluster."""

from __future__ import annotations

import tomllib
from pathlib import Path

import msgspec
import yaml

from ttsframe.core.config.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "docs" / "examples" / "raycluster.yaml"
POLICIES = ROOT / "docs" / "examples" / "networkpolicy.yaml"
PAGE = ROOT / "docs" / "deployment.md"


def test_kuberay_manifest_parses():
    docs = list(yaml.safe_load_all(MANIFEST.read_text()))
    kinds = [(d["apiVersion"], d["kind"]) for d in docs]
    assert kinds == [("ray.io/v1", "RayCluster"), ("v1", "ConfigMap")]
    cluster = docs[0]["spec"]
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    command = " ".join(head["lifecycle"]["postStart"]["exec"]["command"])
    assert "--cluster ray --ray-address auto" in command
    (group,) = cluster["workerGroupSpecs"]
    worker = group["template"]["spec"]["containers"][0]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    # Every volume a container mounts is declared in its pod.
    for pod in (cluster["headGroupSpec"]["template"]["spec"], group["template"]["spec"]):
        declared = {v["name"] for v in pod["volumes"]}
        for container in pod["containers"]:
            assert {m["name"] for m in container["volumeMounts"]} <= declared


def test_kuberay_config_is_valid_ttsframe_config():
    config_map = list(yaml.safe_load_all(MANIFEST.read_text()))[1]
    raw = tomllib.loads(config_map["data"]["ttsframe.toml"])
    settings = msgspec.convert(raw, Settings)
    assert settings.cluster.engine == "ray" and settings.cluster.address == "auto"


def test_deployment_page_links_the_example():
    page = (ROOT / "docs" / "deployment.md").read_text()
    assert "examples/raycluster.yaml" in page


def securing_section() -> str:
    page = PAGE.read_text()
    assert "\n## Securing a cluster\n" in page
    return page.split("\n## Securing a cluster\n", 1)[1].split("\n## ", 1)[0]


def test_securing_a_cluster_names_every_port_flag_to_restrict():
    section = securing_section()
    for flag in ("--node-ip-address", "--port", "--dashboard-host", "--ray-client-server-port",
                 "--min-worker-port", "--max-worker-port", "--node-manager-port",
                 "--object-manager-port", "--include-dashboard=false"):
        assert f"`{flag}" in section or f" {flag}=" in section, flag
    assert "RAY_AUTH_MODE=token" in section
    assert "examples/networkpolicy.yaml" in section
    # the page's first cluster commands already bind Ray to the private address
    assert "ray start --head --port=6379 --node-ip-address=" in PAGE.read_text()


def test_network_policies_admit_only_the_cluster_and_the_api_port():
    cluster = next(yaml.safe_load_all(MANIFEST.read_text()))
    name = cluster["metadata"]["name"]
    head = cluster["spec"]["headGroupSpec"]
    ports = {p["name"]: p["containerPort"]
             for p in head["template"]["spec"]["containers"][0]["ports"]}
    # The dashboard stays on the head pod's loopback.
    assert head["rayStartParams"]["dashboard-host"] == "127.0.0.1"

    policies = list(yaml.safe_load_all(POLICIES.read_text()))
    assert {(p["apiVersion"], p["kind"]) for p in policies} == {
        ("networking.k8s.io/v1", "NetworkPolicy")}
    by_name = {p["metadata"]["name"]: p["spec"] for p in policies}
    internal, api = by_name["ttsframe-ray-internal"], by_name["ttsframe-api"]
    # Every pod of the cluster: reachable from the cluster's own pods only.
    assert internal["podSelector"]["matchLabels"] == {"ray.io/cluster": name}
    assert internal["policyTypes"] == ["Ingress"]
    (rule,) = internal["ingress"]
    assert rule == {"from": [{"podSelector": {"matchLabels": {"ray.io/cluster": name}}}]}
    # The head pod: its ttsframe port from anywhere, and nothing else.
    assert api["podSelector"]["matchLabels"] == {"ray.io/cluster": name,
                                                 "ray.io/node-type": "head"}
    (rule,) = api["ingress"]
    assert rule == {"ports": [{"protocol": "TCP", "port": ports["http"]}]}
    # The page shows the same policies as the file.
    section = securing_section()
    shown = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert list(yaml.safe_load_all(shown)) == policies
