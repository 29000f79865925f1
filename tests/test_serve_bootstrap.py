"""``meshxds bootstrap`` output, and the checked-in envoy-configs/ it generated for the example mesh."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from meshxds.cli.bootstrap import render
from meshxds.cli.main import main
from meshxds.resources import load_catalog
from tests.support.envoy import Envoy
from tests.support.net import free_port
from tests.support.poll import wait_until

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "envoy-configs"
EXAMPLE = ROOT / "examples" / "universal-demo"
FIRST_ADMIN_PORT = 9901


def example_nodes() -> list[str]:
    catalog = load_catalog([EXAMPLE]).catalog
    assert catalog is not None
    return catalog.node_ids()


def test_bootstrap_command_prints_ads_config(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bootstrap", "--node", "default.web-1", "--ads", "127.0.0.1:18000", "--delta", "--admin-port", "9999"]
    assert main(argv) == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["node"]["id"] == "default.web-1"
    ads = config["dynamic_resources"]["ads_config"]
    assert ads["api_type"] == "DELTA_GRPC" and ads["set_node_on_first_message_only"] is True
    assert config["dynamic_resources"]["cds_config"] == {"resource_api_version": "V3", "ads": {}}
    xds = config["static_resources"]["clusters"][0]
    options = xds["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert options["explicit_http_config"]["http2_protocol_options"]["connection_keepalive"]["interval"] == "30s"
    assert config["admin"]["address"]["socket_address"]["port_value"] == 9999


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--node", "web-1", "--ads", "127.0.0.1:18000"], "expected MESH.NAME"),
        (["--node", "default.web-1", "--ads", "localhost"], "expected HOST:PORT"),
        (["--node", "default.web-1", "--ads", "h:70000"], "expected HOST:PORT"),
    ],
)
def test_bootstrap_rejects_bad_arguments(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bootstrap", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_envoy_configs_are_the_commands_output(update_golden: bool) -> None:
    nodes = example_nodes()
    expected = {
        f"{node}.yaml": render(node, "127.0.0.1:18000", admin_port=FIRST_ADMIN_PORT + i) for i, node in enumerate(nodes)
    }
    if update_golden:
        for stale in CONFIGS.glob("*.yaml"):
            stale.unlink()
        for name, text in expected.items():
            (CONFIGS / name).write_text(text)
    actual = {p.name: p.read_text() for p in CONFIGS.glob("*.yaml")}
    assert actual == expected, "envoy-configs/ is stale: run pytest --update-golden"


def test_envoy_accepts_the_generated_bootstrap(tmp_path: Path) -> None:
    """Envoy parses and starts with the printed YAML (no server behind it: it waits, admin is up)."""
    config = yaml.safe_load(render("default.web-1", f"127.0.0.1:{free_port()}", delta=True))
    with Envoy(config, tmp_path) as envoy:
        wait_until(lambda: envoy.stat("control_plane.connected_state") == 0, what="envoy up")
        assert envoy.get("/ready").strip() in ("PRE_INITIALIZING", "INITIALIZING")


def test_bootstrap_has_hds_and_dns_port(capsys: pytest.CaptureFixture[str]) -> None:
    """Kuma's bootstrap (pkg/xds/bootstrap/template_v3.go): ``hdsConfig`` on the ADS cluster, GRPC, node sent once;
    the DNS port as node metadata ``dataplane.dns.port`` (a string), only when asked for."""
    assert main(["bootstrap", "--node", "default.web-1", "--dns-port", "15054"]) == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["hds_config"] == {
        "api_type": "GRPC",
        "transport_api_version": "V3",
        "grpc_services": [{"envoy_grpc": {"cluster_name": "xds_cluster"}}],
        "set_node_on_first_message_only": True,
    }
    assert config["node"]["metadata"] == {"dataplane.dns.port": "15054"}
    assert main(["bootstrap", "--node", "default.web-1"]) == 0
    assert "metadata" not in yaml.safe_load(capsys.readouterr().out)["node"]
    assert main(["bootstrap", "--node", "default.web-1", "--dns-port", "70000"]) == 2
    assert "--dns-port 70000" in capsys.readouterr().err
