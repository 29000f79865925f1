"""Read YAML files into validated models, turning every failure into a Problem.

Files are read in path order and documents in file order; that order is the
"load order" that stands in for Kuma's creation time ("oldest" = loaded first).
Two forms are accepted, as in Kuma: universal (``type``/``name``/``mesh``) and
Kubernetes (``apiVersion``/``kind``/``metadata``). Kubernetes ``v1`` Services and
Namespaces are kept raw for ``resources.k8s`` to convert once every Mesh is known.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from meshxds.resources import model as m
from meshxds.resources.errors import Origin, Problem, Severity
from meshxds.resources.names import check_name
from meshxds.resources.policies import POLICY_KINDS, AnyPolicy
from meshxds.resources.rules import PORT_RANGE, check_resource

YAML_SUFFIXES = (".yaml", ".yml")
# libyaml's parser when present: ~10x faster on big inputs, same safe constructors.
BASE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SafeLoader(BASE_LOADER):  # type: ignore[valid-type,misc]
    """Safe loading that rejects duplicate keys, as Kubernetes' YAML parser does (no silent overwrite)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, list | dict):
                continue  # unhashable: the base constructor reports it
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


# Aliases may repeat what a document already holds, but not blow it up ("billion laughs"): a document
# whose aliases expand it beyond this many nodes, and beyond ALIAS_RATIO times its own size, is refused
# before anything (validation, comparison, dumping) walks the expanded structure.
ALIAS_EXPANSION_LIMIT = 100_000
ALIAS_RATIO = 10


class AliasBomb(yaml.YAMLError):
    """A document whose aliases expand too far (or refer to themselves)."""


def expanded_size(root: yaml.Node, limit: int) -> int:
    """How many nodes the document has once every alias is expanded; stops counting past ``limit``.

    Memoized per node, so the cost is the size of the document as written, not as expanded.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise AliasBomb("an alias refers to the node that contains it")
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                total += size(child)
                if total > limit:
                    break
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k) + size(v)
                if total > limit:
                    break
        active.discard(key)
        sizes[key] = total
        return total

    return size(root)


def distinct_nodes(root: yaml.Node) -> int:
    """How many nodes the document has as written (each aliased node once)."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            todo.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            todo.extend(n for pair in node.value for n in pair)
    return len(seen)


def load_all_checked(text: str) -> Iterator[Any]:
    """``yaml.load_all`` with the alias expansion limit checked on each composed document."""
    loader = SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                yield None
                continue
            limit = max(ALIAS_EXPANSION_LIMIT, ALIAS_RATIO * distinct_nodes(node))
            if expanded_size(node, limit) > limit:
                raise AliasBomb(f"aliases expand the document beyond {limit:,} nodes (refused)")
            yield loader.construct_document(node)
    finally:
        loader.dispose()


KUMA_API_GROUP = "kuma.io/"
# Read-only metadata that `kumactl get -o yaml` prints; accepted and ignored.
UNIVERSAL_META = {"creationTime", "modificationTime"}
UNIVERSAL_KEYS = {"type", "name", "mesh", "labels", "spec", "status", *UNIVERSAL_META}
K8S_KEYS = {"apiVersion", "kind", "metadata", "spec", "status", "mesh"}
# Universal Mesh, Dataplane and ZoneIngress put their spec fields at top level.
FLAT_KINDS = {"Mesh", "Dataplane", "ZoneIngress"}
GLOBAL_KINDS = {"Mesh", "HostnameGenerator", "ZoneIngress"}
NAMESPACED_KINDS = {"Dataplane", "MeshService", "MeshMultiZoneService", *POLICY_KINDS}
# Every kind the loader reads: the destination resources and the targeting policies.
KINDS = {**m.KINDS, **POLICY_KINDS}
AnyResource = m.Resource | AnyPolicy


@dataclass(frozen=True)
class Loaded:
    """One validated resource and where it came from."""

    resource: AnyResource
    origin: Origin


@dataclass(frozen=True)
class RawK8s:
    """A Kubernetes core object (Service or Namespace) kept for conversion."""

    kind: str
    body: dict[str, Any]
    origin: Origin


@dataclass(frozen=True)
class Documents:
    """Everything read from the input files, in load order."""

    resources: tuple[Loaded, ...]
    k8s: tuple[RawK8s, ...]
    problems: tuple[Problem, ...]
    # Names of Mesh documents that failed validation: their resources get no "mesh does not exist" noise.
    broken_meshes: frozenset[str] = frozenset()


def describe(kind: str, name: object, mesh: object = None) -> str:
    """``MeshService default/redis`` for mesh-scoped kinds, ``Mesh default`` otherwise."""
    if not isinstance(name, str) or not name:
        return kind
    if kind in GLOBAL_KINDS or not isinstance(mesh, str):
        return f"{kind} {name}"
    return f"{kind} {mesh}/{name}"


def resource_id(res: AnyResource) -> str:
    return describe(res.kind, res.name, getattr(res, "mesh", None))


# --------------------------------------------------------------------------- files


def find_files(paths: Sequence[str | Path]) -> tuple[list[Path], list[Problem]]:
    """Every .yaml/.yml file under ``paths``, deduplicated and sorted by path."""
    files: set[Path] = set()
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found, unreadable = yaml_files_under(path)
            problems += [Problem(d, None, None, None, f"cannot read folder: {why}") for d, why in unreadable]
            if not found and not unreadable:
                problems.append(Problem(str(path), None, None, None, "no .yaml or .yml files in this folder"))
            files.update(found)
        elif path.is_file():
            files.add(path)
        else:
            problems.append(Problem(str(path), None, None, None, "no such file or directory"))
    return sorted(files, key=lambda p: p.as_posix()), problems


def yaml_files_under(folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Every YAML file under ``folder`` and every sub-folder that could not be listed.

    An unreadable folder is an error, not an empty one: silently skipping it would drop its resources.
    """
    unreadable: list[tuple[str, str]] = []

    def failed(e: OSError) -> None:
        unreadable.append((str(e.filename or folder), e.strerror or str(e)))

    found: list[Path] = []
    for top, _dirs, names in os.walk(folder, onerror=failed, followlinks=True):
        for name in names:
            p = Path(top, name)
            if p.suffix in YAML_SUFFIXES and p.is_file():
                found.append(p)
    return found, unreadable


def read_documents(path: Path) -> tuple[list[tuple[int, Any]], list[Problem]]:
    """Parse a YAML stream; documents keep their 1-based index, empty ones are skipped."""
    name = str(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        return [], [Problem(name, None, None, None, f"cannot read file: {e.strerror or e}")]
    except UnicodeDecodeError as e:
        return [], [Problem(name, None, None, None, f"not UTF-8 text (byte {e.start})")]
    docs: list[tuple[int, Any]] = []
    index = 0
    try:
        for index, doc in enumerate(load_all_checked(text), start=1):
            if doc is not None:
                docs.append((index, doc))
    except yaml.reader.ReaderError as e:
        char = e.character if isinstance(e.character, int) else ord(e.character)
        message = f"invalid YAML: unacceptable character #x{char:04x} at position {e.position}"
        return docs, [Problem(name, index + 1, None, None, message)]
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return docs, [Problem(name, index + 1, None, None, f"invalid YAML{where}: {e.problem or e}")]
    except AliasBomb as e:
        return docs, [Problem(name, index + 1, None, None, f"invalid YAML: {e}")]
    except (yaml.YAMLError, RecursionError, ValueError, OverflowError) as e:
        reason = (str(e).splitlines() or [type(e).__name__])[0].split(":")[0]
        return docs, [Problem(name, index + 1, None, None, f"invalid YAML: {reason}")]
    return docs, []


# --------------------------------------------------------------------------- documents


def load_documents(paths: Sequence[str | Path], zone: str = "default") -> Documents:
    files, problems = find_files(paths)
    resources: list[Loaded] = []
    k8s: list[RawK8s] = []
    broken: set[str] = set()
    for path in files:
        docs, read_problems = read_documents(path)
        for index, doc in docs:
            item, doc_problems = parse_document(doc, Origin(str(path), index), zone)
            problems.extend(doc_problems)
            if doc_problems and item is None:
                broken.update(mesh_name(doc))
            if isinstance(item, Loaded):
                resources.append(item)
            elif isinstance(item, RawK8s):
                k8s.append(item)
        problems.extend(read_problems)
    return Documents(tuple(resources), tuple(k8s), tuple(problems), frozenset(broken))


def mesh_name(doc: Any) -> list[str]:
    """The name of a Mesh document that failed to load, if it has one."""
    if not isinstance(doc, dict) or "Mesh" not in (doc.get("type"), doc.get("kind")):
        return []
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else doc.get("name")
    return [name] if isinstance(name, str) else []


def parse_document(doc: Any, origin: Origin, zone: str) -> tuple[Loaded | RawK8s | None, list[Problem]]:
    if not isinstance(doc, dict):
        return None, [
            origin.problem(None, None, f"must be a mapping with `type` or `apiVersion`/`kind`, not {kind_of(doc)}")
        ]
    if "apiVersion" in doc or ("kind" in doc and "type" not in doc):
        return parse_kubernetes(doc, Origin(origin.file, origin.index, kubernetes=True), zone)
    if "type" in doc:
        return parse_universal(doc, origin, zone)
    return None, [
        origin.problem(None, None, "has neither `type` (universal form) nor `apiVersion`/`kind` (Kubernetes form)")
    ]


def parse_universal(doc: dict[Any, Any], origin: Origin, zone: str) -> tuple[Loaded | None, list[Problem]]:
    kind = doc.get("type")
    if not isinstance(kind, str) or kind not in KINDS:
        return None, [origin.problem(None, "type", unknown_kind(kind))]
    what = describe(kind, doc.get("name"), doc.get("mesh", "default"))
    body: dict[Any, Any] = {k: v for k, v in doc.items() if k not in UNIVERSAL_META and k != "type"}
    if kind in FLAT_KINDS and "spec" not in doc:
        spec = {k: v for k, v in body.items() if k not in UNIVERSAL_KEYS}
        body = {k: v for k, v in body.items() if k in UNIVERSAL_KEYS}
        body["spec"] = spec
        origin = Origin(origin.file, origin.index, flat=True)
    body["kind"] = kind
    return build(kind, body, what, origin, zone, env="universal")


def parse_kubernetes(doc: dict[Any, Any], origin: Origin, zone: str) -> tuple[Loaded | RawK8s | None, list[Problem]]:
    api, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(api, str) or not isinstance(kind, str):
        return None, [origin.problem(None, None, "`apiVersion` and `kind` must both be strings")]
    meta = doc.get("metadata")
    if api == "v1" and kind in ("Service", "Namespace"):
        return RawK8s(kind, doc, origin), []
    if not api.startswith(KUMA_API_GROUP):
        what = f"{api} {kind}"
        return None, [origin.warning(what, None, "skipped: not a Kuma resource")]
    if kind not in KINDS:
        return None, [origin.problem(None, "kind", unknown_kind(kind))]
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        return None, [origin.problem(kind, "metadata.name", "is required and must be a non-empty string")]
    labels = meta.get("labels", {})
    if not isinstance(labels, dict):
        return None, [origin.problem(kind, "metadata.labels", "must be a mapping")]
    mesh = labels.get(m.MESH_LABEL, doc.get("mesh", "default"))
    namespace = meta.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        return None, [origin.problem(kind, "metadata.namespace", "must be a string")]
    name: str = meta["name"]
    labels = dict(labels)
    if kind in NAMESPACED_KINDS and namespace:
        # Kuma's core name for a namespaced Kubernetes object is `<name>.<namespace>`.
        labels.setdefault(m.DISPLAY_NAME_LABEL, name)
        labels.setdefault(m.NAMESPACE_LABEL, namespace)
        name = f"{name}.{namespace}"
    what = describe(kind, name, mesh)
    problems = [origin.problem(what, k, "unknown field") for k in doc if k not in K8S_KEYS]
    body: dict[Any, Any] = {"kind": kind, "name": name, "labels": labels}
    if kind not in GLOBAL_KINDS:
        body["mesh"] = mesh
    for key in ("spec", "status"):
        if key in doc:
            body[key] = doc[key]
    if kind == "ZoneIngress" and "spec" not in doc:
        body["spec"] = {}
    item, build_problems = build(kind, body, what, origin, zone, env="kubernetes")
    problems += build_problems
    return (item if not problems else None), problems


def build(
    kind: str, body: dict[Any, Any], what: str, origin: Origin, zone: str, env: str
) -> tuple[Loaded | None, list[Problem]]:
    """Validate with the pydantic model; every pydantic error becomes one Problem.

    A schema error must not hide the resource's other problems: the values pydantic rejected are
    replaced or dropped (``repair``) and, when that makes a resource, ``rules.check_resource`` runs
    on it too (findings under a repaired field are left out: they would only echo the schema error).
    """
    cls = KINDS[kind]
    try:
        res = cls.model_validate(body)
    except ValidationError as e:
        problems = [origin.problem(what, error_path(err["loc"]), error_message(err)) for err in e.errors()]
        repaired, touched = repair(cls, body, e)
        if repaired is not None:
            for found in check_resource(repaired):  # type: ignore[arg-type]
                if not any(found.field == d or found.field.startswith((d + ".", d + "[")) for d in touched):
                    severity = Severity.WARNING if found.warning else Severity.ERROR
                    problems.append(origin.problem(what, found.field, found.message, severity))
            return None, sorted(problems, key=lambda p: p.severity != Severity.ERROR)
        labels = body.get("labels")
        name = labels.get(m.DISPLAY_NAME_LABEL) if isinstance(labels, dict) else None
        name = name if isinstance(name, str) else body.get("name")
        if kind == "MeshService" and isinstance(name, str) and (msg := check_name(name)):
            problems.insert(0, origin.problem(what, "name", msg))  # the name rule does not need a valid spec
        return None, problems
    except (RecursionError, ValueError, TypeError, OverflowError) as e:
        return None, [origin.problem(what, None, f"cannot be read: {type(e).__name__}")]
    resource: AnyResource = res  # type: ignore[assignment]
    return Loaded(with_computed_labels(resource, zone, env), origin), []


# A value of the right type for a field whose own value had the wrong one (rules then skip that field).
PLACEHOLDERS: dict[str, Any] = {
    "string_type": "",
    "int_type": 0,
    "int_parsing": 0,
    "int_from_float": 0,
    "bool_type": False,
    "bool_parsing": False,
    "dict_type": {},
    "model_type": {},
    "model_attributes_type": {},
    "list_type": [],
}


def repair(cls: type[BaseModel], body: dict[Any, Any], error: ValidationError) -> tuple[BaseModel | None, list[str]]:
    """``body`` with every rejected value replaced (wrong type) or dropped (unknown field, bad choice).

    Returns the model built from what is left and the paths touched; None when that still fails
    (a required field is missing, say).
    """
    data = copy.deepcopy(body)
    touched: list[str] = []
    for _ in range(4):
        for err in error.errors():
            path = None if err["type"] == "missing" else patch(data, err["loc"], err["type"])
            if path is None:
                return None, []
            touched.append(path)
        try:
            return cls.model_validate(data), touched
        except ValidationError as e:
            error = e
        except (RecursionError, ValueError, TypeError, OverflowError):
            return None, []
    return None, []


def patch(data: Any, loc: Iterable[int | str], kind: str) -> str | None:
    """Fix the deepest existing node on ``loc`` (pydantic adds union member names, which are not keys)."""
    parent: Any = None
    key: int | str | None = None
    node: Any = data
    walked: list[int | str] = []
    for part in loc:
        if not has_child(node, part):
            break
        parent, key, node = node, part, node[part]
        walked.append(part)
    if parent is None or key is None:
        return None
    if kind in PLACEHOLDERS:
        parent[key] = copy.copy(PLACEHOLDERS[kind])
    elif isinstance(parent, dict):
        del parent[key]
    else:
        return None
    return error_path(walked)


def has_child(node: Any, part: int | str) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def with_computed_labels(res: AnyResource, zone: str, env: str) -> AnyResource:
    """Labels a Kuma zone control plane adds when it stores a mesh-scoped resource (compute.go).

    Origin, zone and env go only on kinds a zone creates and syncs up (Dataplane, MeshService);
    a MeshMultiZoneService is created on the global control plane, so it only gets its mesh.
    """
    if isinstance(res, m.Mesh | m.HostnameGenerator | m.ZoneIngress):
        return res
    labels = dict(res.labels)
    labels[m.MESH_LABEL] = res.mesh
    if not isinstance(res, m.MeshMultiZoneService):
        labels.setdefault(m.ORIGIN_LABEL, "zone")
        labels.setdefault(m.ZONE_LABEL, zone)
        labels.setdefault(m.ENV_LABEL, env)
    if isinstance(res, m.Dataplane):
        labels.setdefault(m.PROXY_TYPE_LABEL, "gateway" if res.networking.gateway else "sidecar")
    return res.model_copy(update={"labels": labels})


# --------------------------------------------------------------------------- messages


def unknown_kind(kind: object) -> str:
    known = ", ".join(KINDS)
    if not isinstance(kind, str):
        return f"must be one of {known}"
    return f"unknown kind {kind!r}: must be one of {known}"


def kind_of(value: object) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def error_path(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


TYPE_MESSAGES = {
    "extra_forbidden": "unknown field",
    "missing": "is required",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "list_type": "must be a list",
}


def error_message(err: Any) -> str:
    kind = err["type"]
    if kind in ("greater_than_equal", "less_than_equal") and is_port_field(err["loc"]):
        return PORT_RANGE
    if kind in TYPE_MESSAGES:
        return TYPE_MESSAGES[kind]
    if kind in ("enum", "literal_error"):
        return f"must be one of {err.get('ctx', {}).get('expected', '')}".rstrip()
    msg = str(err["msg"])
    return msg[:1].lower() + msg[1:]


def is_port_field(loc: Iterable[int | str]) -> bool:
    last = [p for p in loc if isinstance(p, str)][-1:]
    return bool(last) and last[0].lower().endswith("port")
