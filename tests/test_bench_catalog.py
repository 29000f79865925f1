"""``python -m bench.catalog`` times every row and checks each incremental Catalog against a build from scratch."""

from __future__ import annotations

from bench.catalog import figures, run, table
from bench.mesh import MeshSpec


def test_every_row_is_timed_and_equals_a_build_from_scratch() -> None:
    spec = MeshSpec(6, 2)
    rows = run(spec, repeat=2)
    assert [r.name.strip().split(" ")[0] for r in rows] == ["full", "nothing", "one", "the", "the"]
    assert all(r.same and r.wall_ms > 0 and r.cpu_ms >= 0 for r in rows)
    text = table(spec, rows)
    assert "6 svc x 2 DP, Exclusive" in text and "NO" not in text


def test_figures_for_the_main_bench() -> None:
    out = figures(MeshSpec(4, 2, mtls=True), repeat=1)
    assert set(out) == {"full_ms", "full_cpu_ms", "one_change_ms", "one_change_cpu_ms"}
    assert out["full_ms"] > 0 and out["one_change_ms"] > 0
