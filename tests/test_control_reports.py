"""What sidecars report, kept as load inputs: a change marks the next load due, a repeat does not."""

from __future__ import annotations

from meshxds.control.reports import ProxyReports
from meshxds.resources.health import HealthReport
from meshxds.resources.model import Dataplane

DP = Dataplane.model_validate(
    {
        "name": "web-1",
        "spec": {"networking": {"address": "10.0.0.1", "inbound": [{"port": 80, "serviceProbe": {"tcp": {}}}]}},
    }
)


def test_only_changes_mark_a_load_due() -> None:
    reports = ProxyReports()
    assert reports.report_health("default.web-1", HealthReport({80: True}))
    assert reports.dirty
    assert reports.take() == ({"default.web-1": HealthReport({80: True})}, {})
    assert not reports.dirty
    assert not reports.report_health("default.web-1", HealthReport({80: True}))  # Envoy repeats every interval
    assert not reports.dirty
    assert reports.report_dns_port("default.web-1", 15054) and reports.take()[1] == {"default.web-1": 15054}
    assert not reports.report_dns_port("default.web-1", 15054)
    assert reports.report_dns_port("default.web-1", 0) and reports.take()[1] == {}


def test_forget_others_drops_removed_nodes() -> None:
    reports = ProxyReports()
    reports.report_health("default.a", HealthReport())
    reports.report_health("default.b", HealthReport())
    reports.report_dns_port("default.b", 53)
    reports.forget_others({"default.a"})
    assert reports.take() == ({"default.a": HealthReport()}, {})


def test_specifier_is_encoded_once_per_dataplane_object() -> None:
    reports = ProxyReports()
    first = reports.specifier(DP)
    assert first is not None and b"localhost:80" in first
    assert reports.specifier(DP) is first
    assert reports.specifier(None) is None
