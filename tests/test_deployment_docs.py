"""The deployment page's KubeRay example is a manifest that parses, and its config is one
ttsframe accepts."""

from __future__ import annotations

import tomllib
from pathlib import Path

import msgspec
import yaml

from ttsframe.core.config import Settings

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "docs" / "examples" / "raycluster.yaml"


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
