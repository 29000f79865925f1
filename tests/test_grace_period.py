"""Kuma's deletion grace period for generated MeshServices, in store mode on a real PostgreSQL.

Kuma v2.14.3 pkg/core/resources/apis/meshservice/generate/generator.go ``generate``: a generated MeshService
whose last Dataplane is gone gets the ``kuma.io/deletion-grace-period-started-at`` label and stays (with its
VIP) until ``deletionGracePeriod`` (kuma-cp.defaults.yaml ``meshService.deletionGracePeriod: 1h``) has passed,
then it is deleted; a Dataplane that comes back in time takes it over again without the label.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meshxds.control.background import Background
from meshxds.control.store_service import StoreService
from meshxds.resources import model as m
from meshxds.resources.generate import GRACE_LABEL, grace_started
from meshxds.store.model import Change, Key, Record
from meshxds.store.postgres import PostgresStore
from meshxds.store.state import STATE_NAME, previous_catalog
from tests.support.poll import wait_until

pytestmark = pytest.mark.real  # the test uses the session's real PostgreSQL server

DP = Record(
    Key("Dataplane", "default", "api-1"),
    {"networking": {"address": "10.0.0.2", "inbound": [{"port": 8080, "tags": {"kuma.io/service": "api"}}]}},
)


def test_generated_meshservice_outlives_its_last_dataplane_for_the_grace_period(postgres_url: str) -> None:
    period = timedelta(seconds=1.5)

    bg = Background("grace-period")
    service = bg.run(start(postgres_url, period))
    store = service.store

    async def write(action: str, record: Record) -> None:
        if action == "DELETE":
            await store.delete(record.key)
        elif action == "INSERT":
            await store.create(record)
        else:
            await store.update(record)
        await service.on_write(Change(action, record.key))

    def api() -> m.MeshService | None:
        view = service.current.meshes.get("default") if service.current else None
        return next((s for s in view.mesh_services if s.name == "api"), None) if view else None

    def labelled() -> m.MeshService | None:
        return s if (s := api()) is not None and GRACE_LABEL in s.labels else None

    def unlabelled() -> m.MeshService | None:
        return s if (s := api()) is not None and s.status.vips and GRACE_LABEL not in s.labels else None

    try:
        mesh = bg.run(store.get(Key("Mesh", "", "default")))  # the leader's default Mesh
        bg.run(write("UPDATE", Record(mesh.key, {"meshServices": {"mode": "Exclusive"}}, version=mesh.version)))
        bg.run(write("INSERT", DP))
        first = wait_until(unlabelled, what="the generated service")
        assert first is not None
        vip = first.status.vips[0].ip

        bg.run(write("DELETE", DP))
        kept = wait_until(labelled, what="the grace label")
        assert kept is not None and kept.status.vips[0].ip == vip  # kept, with its VIP
        started = grace_started(kept)
        assert started is not None and abs(datetime.now(UTC) - started) < timedelta(seconds=5)
        state = previous_catalog(bg.run(store.get_state(STATE_NAME)))  # the leader persisted the label
        assert state is not None
        assert GRACE_LABEL in next(s for s in state.meshes["default"].mesh_services if s.name == "api").labels

        # A Dataplane coming back within the period takes the service over: label gone, same VIP.
        bg.run(write("INSERT", DP))
        back = wait_until(unlabelled, what="the label removed")
        assert back is not None and back.status.vips[0].ip == vip

        bg.run(write("DELETE", DP))
        wait_until(labelled, what="a new grace period")
        assert api() is not None  # still within the period
        # No further write: the service's own timer rebuilds when the period ends, and the service goes.
        wait_until(lambda: service.current is not None and api() is None, what="deletion after the period")
    finally:
        bg.run(service.stop())
        bg.close()


async def start(url: str, period: timedelta) -> StoreService:
    service = StoreService(await PostgresStore.open(url), grace_period=period)
    await service.start("127.0.0.1", 0)
    return service
