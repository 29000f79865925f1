"""Building envoy-data-plane messages without pydantic: one generated constructor per message class.

Every generated message is a pydantic dataclass, so its own constructor validates all arguments with
pydantic-core (and builds the class's validator on first use), then betterproto2's ``__post_init__``
checks deprecated fields and oneof groups one ``warnings.catch_warnings()`` at a time. The translators
build tens of thousands of messages per build from values that are already of the right type, so that
work is pure overhead: ``constructor(cls)`` makes (once per class) a function that takes the same
keyword arguments and fills the instance ``__dict__`` exactly as the validated constructor leaves it,
every field in declaration order (the given value or the field's default) and ``_unknown_fields``.

The class's pydantic validator is then never built, but betterproto2's own ``bytes()``, ``to_dict()`` and
``to_json()`` (the dump and debug paths) validate with it first and fail on a class pydantic has not
completed yet; so each class given a constructor also gets a ``_validate`` that completes the class
on first use. The validated constructor keeps working unchanged.

What it does not do is what validation adds: no coercion (pass an enum member, not its int; a list,
not a tuple; a ``timedelta`` for a Duration) and no oneof check. ``tests/test_construct.py`` builds
every message the translators emit both ways and requires equal field values of identical types and
identical bytes, so a translator that leans on a coercion fails there.
"""

from __future__ import annotations

import dataclasses
import keyword
from collections.abc import Callable, MutableMapping
from typing import Any, TypeVar

import betterproto2
from pydantic.dataclasses import rebuild_dataclass

M = TypeVar("M")

# Defaults that are one shared immutable object (str, int, enum member, None...) are constants; the
# mutable ones (a repeated field's list, a map's dict) are made fresh per instance, as the dataclass does.
_FRESH: dict[Any, str] = {list: "[]", dict: "{}"}

_CONSTRUCTORS: dict[type, Callable[..., Any]] = {}


def constructor(cls: type[M]) -> Callable[..., M]:
    """The fast constructor of message class ``cls`` (made on first use): keyword arguments only."""
    made = _CONSTRUCTORS.get(cls)
    if made is None:
        made = _CONSTRUCTORS[cls] = _compile(cls)
        cls._validate = _validate_completing  # type: ignore[attr-defined]
    return made


def _validate_completing(self: betterproto2.Message) -> None:
    """betterproto2's ``_validate``, after completing the class's lazily built pydantic schema."""
    cls = type(self)
    if not getattr(cls, "__pydantic_complete__", True):
        rebuild_dataclass(cls)
    betterproto2.Message._validate(self)


def is_message_class(obj: object) -> bool:
    return isinstance(obj, type) and issubclass(obj, betterproto2.Message) and obj is not betterproto2.Message


def install(namespace: MutableMapping[str, Any]) -> None:
    """Rebind every message class in a module's ``namespace`` to its fast constructor.

    For the modules that build messages (``translators/protos.py`` & co.): their code keeps reading
    ``Cluster(name=...)``, while type checkers, which skip the call (``if not TYPE_CHECKING``), keep
    seeing the classes for annotations.
    """
    for name, obj in list(namespace.items()):
        if is_message_class(obj):
            namespace[name] = constructor(obj)


_MISSING = object()


def _compile(cls: type[M]) -> Callable[..., M]:
    """One straight-line function: ``def new(*, a=<default>, b=_MISSING, ...)`` filling ``__dict__``.

    Only betterproto2's field names (Python identifiers, checked) reach the generated source; defaults
    are bound as constants in its namespace.
    """
    env: dict[str, Any] = {"_new": object.__new__, "_cls": cls, "_MISSING": _MISSING}
    params, entries, fresh = [], [], []
    for n, f in enumerate(dataclasses.fields(cls)):  # type: ignore[arg-type]
        name = f.name
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
            raise TypeError(f"{cls.__qualname__}: field {name!r} cannot be a keyword argument")
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
        elif f.default_factory is not dataclasses.MISSING:
            factory = f.default_factory
            if factory in _FRESH:
                params.append(f"{name}=_MISSING")
                fresh.append(f"    if {name} is _MISSING: {name} = {_FRESH[factory]}")
                entries.append(f"{name!r}: {name}")
                continue
            default = factory()
        else:
            raise TypeError(f"{cls.__qualname__}: field {name!r} has no default")
        env[f"D{n}"] = default
        params.append(f"{name}=D{n}")
        entries.append(f"{name!r}: {name}")
    entries.append("'_unknown_fields': b''")
    lines = [
        f"def new(*, {', '.join(params)}):" if params else "def new():",
        *fresh,
        "    o = _new(_cls)",
        f"    o.__dict__ = {{{', '.join(entries)}}}",
        "    return o",
    ]
    exec(compile("\n".join(lines), f"<constructor {cls.__qualname__}>", "exec"), env)
    new: Callable[..., M] = env["new"]
    new.__qualname__ = new.__name__ = cls.__name__
    new.__doc__ = f"{cls.__qualname__} without validation (meshxds.codec.construct)."
    return new
