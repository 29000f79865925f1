"""A snapshot as Envoy-style JSON: protobuf canonical JSON per resource, sorted, byte-stable.

Used by ``meshxds dump`` and the golden tests. ``to_dict`` is slow (milliseconds per resource),
which is fine here: dumps are for people and tests, never on the serving path.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

from meshxds.snapshots.snapshot import SECRET, SHORT_NAMES, TYPE_ORDER, Snapshot, digest


def to_json_dict(snapshot: Snapshot) -> dict[str, Any]:
    """``{"version", "clusters", "endpoints", "listeners", "routes"}``, each list sorted by name."""
    # The version of the configuration without its secrets: identities are re-issued, configuration is stable.
    version = digest("".join(snapshot.versions[t] for t in TYPE_ORDER if t != SECRET).encode())
    out: dict[str, Any] = {"version": version}
    for type_url in TYPE_ORDER:
        entries = snapshot.get(type_url)
        if type_url == SECRET:
            if entries:  # only meshes with mTLS have secrets; key material never leaves in a dump
                out[SHORT_NAMES[type_url]] = [
                    redacted(canonical(entries[n].message, type_url)) for n in sorted(entries)
                ]
            continue
        out[SHORT_NAMES[type_url]] = [canonical(entries[name].message, type_url) for name in sorted(entries)]
    return out


def redacted(secret: dict[str, Any]) -> dict[str, Any]:
    """A Secret with its private key replaced and its certificates summarised (they change at every issue)."""
    out = copy.deepcopy(secret)
    tls = out.get("tlsCertificate", {})
    if "privateKey" in tls:
        tls["privateKey"] = {"inlineBytes": "[redacted]"}
    for holder, key in ((tls, "certificateChain"), (out.get("validationContext", {}), "trustedCa")):
        if key in holder:
            pem = base64.b64decode(holder[key].get("inlineBytes", ""))
            holder[key] = {"inlineBytes": f"[{pem.count(b'BEGIN CERTIFICATE')} PEM certificate(s)]"}
    return out


# Field JSON names betterproto2 camel-cases differently from protoc (a digit followed by a letter).
JSON_NAMES = {"consecutive5Xx": "consecutive5xx", "enforcingConsecutive5Xx": "enforcingConsecutive5xx"}


def _protoc_names(value: Any) -> Any:
    if isinstance(value, dict):
        return {JSON_NAMES.get(k, k): _protoc_names(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_protoc_names(v) for v in value]
    return value


def canonical(message: Any, type_url: str) -> dict[str, Any]:
    """Canonical JSON of one resource with ``@type`` first, as Envoy's /config_dump shows it."""
    body: dict[str, Any] = _protoc_names(message.to_dict())
    return {"@type": type_url, **body}


def to_json(snapshot: Snapshot) -> str:
    return json.dumps(to_json_dict(snapshot), indent=2, sort_keys=True) + "\n"
