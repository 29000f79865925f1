"""HostnameGenerator: render hostnames into ``status.addresses`` (Kuma's hostname/generator.go).

Kuma uses Go text/template; meshxds implements the subset its templates use:
``{{ .DisplayName }}``, ``{{ .Name }}``, ``{{ .Namespace }}``, ``{{ .Mesh }}``,
``{{ .Zone }}`` and ``{{ label "key" }}``. A template that fails to render gives the
service a ``Generated=False/TemplateError`` condition; a hostname already taken in the
mesh gives the later service ``Generated=False/Collision`` (first wins).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal, TypeVar

from meshxds.resources import model as m
from meshxds.resources.match import labels_match
from meshxds.resources.memo import Table

DEFAULT_GENERATOR = m.HostnameGenerator(
    name="local-universal-mesh-service",
    labels={m.ORIGIN_LABEL: "zone"},
    spec=m.HostnameGeneratorSpec(
        selector=m.HostnameGeneratorSelector(
            mesh_service=m.LabelSelector(match_labels={m.ORIGIN_LABEL: "zone", m.ENV_LABEL: "universal"})
        ),
        template="{{ .DisplayName }}.svc.mesh.local",
    ),
)

ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.DOTALL)
FIELD = re.compile(r"\.(DisplayName|Name|Namespace|Mesh|Zone)")
LABEL = re.compile(r'label\s+(?:"((?:[^"\\]|\\.)*)"|`([^`]*)`)')
DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = re.compile(rf"{DNS1123_LABEL}(\.{DNS1123_LABEL})*")


class TemplateError(ValueError):
    """The template is outside the supported subset, or a label it needs is missing."""


@lru_cache(maxsize=256)
def parse(template: str) -> tuple[str | tuple[str, str], ...]:
    """Split into literal text and actions (``("field", name)`` / ``("label", key)``); cached per template, as
    every service of a generator renders the same one."""
    parts: list[str | tuple[str, str]] = []
    pos = 0
    for match in ACTION.finditer(template):
        parts.append(template[pos : match.start()])
        action = match.group(1)
        if f := FIELD.fullmatch(action):
            parts.append(("field", f.group(1)))
        elif lb := LABEL.fullmatch(action):
            parts.append(("label", lb.group(1) if lb.group(1) is not None else lb.group(2)))
        else:
            raise TemplateError(f"unsupported action {{{{ {action} }}}}")
        pos = match.end()
    rest = template[pos:]
    if "{{" in rest or "}}" in rest:
        raise TemplateError("unclosed action")
    parts.append(rest)
    return tuple(parts)


def render(template: str, fields: dict[str, str], labels: dict[str, str]) -> str:
    out = []
    for part in parse(template):
        if isinstance(part, str):
            out.append(part)
        elif part[0] == "field":
            out.append(fields[part[1]])
        elif part[1] in labels:
            out.append(labels[part[1]])
        else:
            raise TemplateError(f'label "{part[1]}" not found')
    hostname = "".join(out)
    if len(hostname) > 253 or not DNS1123_SUBDOMAIN.fullmatch(hostname):
        raise TemplateError(f"{hostname!r} is not a valid DNS-1123 subdomain")
    return hostname


def template_problem(template: str) -> str | None:
    """Load-time check (Kuma validates the template by rendering with stub values)."""
    if not template.strip():
        return "must not be empty"
    try:
        parts = parse(template)
    except TemplateError as e:
        return str(e)
    stub = "".join(p if isinstance(p, str) else "stub" for p in parts)
    if not DNS1123_SUBDOMAIN.fullmatch(stub):
        return f"must render to a DNS-1123 subdomain (renders as {stub!r} with stub values)"
    return None


Svc = TypeVar("Svc", m.MeshService, m.MeshMultiZoneService)


def fields_of(svc: m.MeshService | m.MeshMultiZoneService, zone: str) -> dict[str, str]:
    labels = svc.labels
    name = labels.get(m.DISPLAY_NAME_LABEL, svc.name)
    return {
        "DisplayName": name,
        "Name": name if m.NAMESPACE_LABEL in labels else svc.name,
        "Namespace": labels.get(m.NAMESPACE_LABEL, ""),
        "Mesh": svc.mesh,
        "Zone": labels.get(m.ZONE_LABEL, zone),
    }


def ordered_generators(generators: Sequence[m.HostnameGenerator]) -> list[m.HostnameGenerator]:
    """Kuma's order: zone-origin before global-origin, then creation (load order); default first."""
    given = [g for g in generators if g.name != DEFAULT_GENERATOR.name]
    default = [g for g in generators if g.name == DEFAULT_GENERATOR.name] or [DEFAULT_GENERATOR]
    every = default + given
    return sorted(every, key=lambda g: g.labels.get(m.ORIGIN_LABEL, "zone") != "zone")


def selector_of(gen: m.HostnameGenerator, svc: m.MeshService | m.MeshMultiZoneService) -> m.LabelSelector | None:
    sel = gen.spec.selector
    return sel.mesh_service if isinstance(svc, m.MeshService) else sel.mesh_multi_zone_service


# What one generator gave one service: (generator name, hostname or None, condition status, reason, message).
Outcome = tuple[str, str | None, Literal["True", "False"], str, str]
# Per generator: None when it does not select the service, else (hostname, None) or (None, template error).
Rendered = tuple[tuple[str | None, str | None] | None, ...]


def rendered(
    svc: m.MeshService | m.MeshMultiZoneService, generators: Sequence[m.HostnameGenerator], zone: str
) -> Rendered:
    """What each generator renders for ``svc`` on its own (collisions are decided across services)."""
    out: list[tuple[str | None, str | None] | None] = []
    for gen in generators:
        sel = selector_of(gen, svc)
        if sel is None or not labels_match(sel.match_labels, svc.labels):
            out.append(None)
            continue
        try:
            out.append((render(gen.spec.template, fields_of(svc, zone), svc.labels), None))
        except TemplateError as e:
            out.append((None, str(e)))
    return tuple(out)


def assign_hostnames(
    services: Sequence[Svc],
    generators: Sequence[m.HostnameGenerator],
    zone: str,
    memo: Table | None = None,
    renders: Table | None = None,
) -> list[Svc]:
    """Fill ``status.addresses``/``hostnameGenerators`` of one mesh's services of one kind.

    ``renders`` keeps what the generators render for a service while it and they are unchanged; ``memo`` keeps
    a service whose outcomes are as last time the very same object.
    """
    gens = tuple(ordered_generators(generators))
    context = (gens, zone)
    made = [renders.of(s, context, rendered, s, gens, zone) if renders else rendered(s, gens, zone) for s in services]
    taken: dict[str, str] = {}  # hostname -> the service that got it
    results: dict[int, list[Outcome]] = {}
    for g, gen in enumerate(gens):
        for n, svc in enumerate(services):
            found = made[n][g]
            if found is None:
                continue
            hostname, error = found
            if hostname is None:
                outcome: Outcome = (gen.name, None, "False", "TemplateError", error or "")
            elif taken.get(hostname, svc.name) != svc.name:  # the same service twice is no collision
                message = f"Hostname collision with {svc.kind}: {svc.name}"  # Kuma's text, naming this service
                outcome = (gen.name, None, "False", "Collision", message)
            else:
                taken[hostname] = svc.name
                outcome = (gen.name, hostname, "True", "Generated", "")
            results.setdefault(n, []).append(outcome)
    out: list[Svc] = []
    for n, item in enumerate(services):
        given = results.get(n)
        if not given:
            out.append(item)
            continue
        outcomes = tuple(sorted(given, key=lambda r: r[0]) if len(given) > 1 else given)
        out.append(memo.of(item, outcomes, with_hostnames, item, outcomes) if memo else with_hostnames(item, outcomes))
    return out


def with_hostnames(item: Svc, outcomes: tuple[Outcome, ...]) -> Svc:
    """``item`` with each generator's address (when it made one) and condition in its status."""
    kept = [a for a in item.status.addresses if a.origin != "HostnameGenerator"]
    made: list[m.Address] = []
    statuses: list[m.HostnameGeneratorStatus] = []
    for name, hostname, state, reason, message in outcomes:
        ref = m.HostnameGeneratorRef(core_name=name)
        if hostname is not None:
            made.append(m.Address(hostname=hostname, origin="HostnameGenerator", hostname_generator_ref=ref))
        cond = m.Condition(type="Generated", status=state, reason=reason, message=message)
        statuses.append(m.HostnameGeneratorStatus(hostname_generator_ref=ref, conditions=[cond]))
    status = item.status.model_copy(update={"addresses": kept + made, "hostname_generators": statuses})
    return item.model_copy(update={"status": status})
