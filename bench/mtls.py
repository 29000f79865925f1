"""Mesh mTLS on vs off: the same mesh built both ways in one process, so the ratio is the cost of mTLS.

Every identity is issued before timing (as on a restart with a state directory): the builds time
translation and the SDS secrets, not key generation. Each variant is built once untimed (pydantic
schemas and caches warm), then the two alternate, best of ``rounds``, as the service runs builds
(collector paused, survivors frozen): on a shared machine the best of alternating runs is the
figure least moved by other load.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import build as b
from bench import mesh
from bench.mesh import MeshSpec
from meshxds.security.issuer import IdentityIssuer


@dataclass(frozen=True)
class MtlsRatio:
    off_s: float
    on_s: float
    identities: int

    @property
    def ratio(self) -> float:
        return self.on_s / self.off_s if self.off_s else float("nan")


def run(spec: MeshSpec, rounds: int = 2) -> MtlsRatio:
    with tempfile.TemporaryDirectory(prefix="meshxds-bench-mtls-") as tmp:
        catalogs = {}
        for mtls in (False, True):
            folder = Path(tmp) / ("on" if mtls else "off")
            folder.mkdir()
            catalogs[mtls] = mesh.load(mesh.write(dataclasses.replace(spec, mtls=mtls), folder))
    issuer = IdentityIssuer()
    identities = len(issuer.credentials(catalogs[True]).identities)
    best = {False: float("inf"), True: float("inf")}
    for mtls in (False, True):
        b.build(catalogs[mtls], b.Builder(issuer), served=True)  # warm-up, untimed
    for _ in range(rounds):
        for mtls in (False, True):
            _, seconds = b.build(catalogs[mtls], b.Builder(issuer), served=True)
            best[mtls] = min(best[mtls], seconds)
    return MtlsRatio(best[False], best[True], identities)
