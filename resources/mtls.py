"""Mesh ``spec.mtls`` as Kuma 2.14 defines it (``api/mesh/v1alpha1/mesh.proto`` Mesh.Mtls,
CertificateAuthorityBackend) and its validation (``pkg/core/resources/apis/mesh/mesh_validator.go``
``validateMtls``, ``pkg/plugins/ca/builtin/manager.go`` / ``provided/manager.go`` ``ValidateBackend``).

``conf`` is a free-form Struct in Kuma whose shape depends on ``type``; it stays a mapping here and
``builtin_conf`` / ``provided_conf`` parse it, so a wrong field is reported under ``conf``.
"""

from __future__ import annotations

import base64
import datetime
import re
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from meshxds.resources.base import Strict

ALLOWED_BACKENDS = 1  # Kuma's AllowedMTLSBackends
_DURATION = re.compile(r"^(\d+)(y|w|d|h|m|s|ms)$")
_UNITS_MS = {"y": 365 * 86_400_000, "w": 7 * 86_400_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000}
_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def parse_mesh_duration(text: str) -> datetime.timedelta:
    """Kuma's ``mesh.ParseDuration``: ``<n><y|w|d|h|m|s|ms>`` or a bare ``0``."""
    if text == "0":
        return datetime.timedelta(0)
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a valid duration string: {text!r}")
    n, unit = int(match.group(1)), match.group(2)
    return datetime.timedelta(milliseconds=n * _UNITS_MS.get(unit, 1))


class Mode(StrEnum):
    STRICT = "STRICT"
    PERMISSIVE = "PERMISSIVE"


class Rotation(Strict):
    expiration: str = ""


class DpCert(Strict):
    rotation: Rotation | None = None
    request_timeout: str | None = Field(None, alias="requestTimeout")


class RootChain(Strict):
    request_timeout: str | None = Field(None, alias="requestTimeout")


class Backend(Strict):
    name: str
    type: str
    dp_cert: DpCert | None = Field(None, alias="dpCert")
    conf: dict[str, Any] | None = None
    mode: Mode = Mode.STRICT
    root_chain: RootChain | None = Field(None, alias="rootChain")

    @property
    def cert_expiration(self) -> datetime.timedelta | None:
        """``dpCert.rotation.expiration`` (None: Kuma's default, 24h)."""
        rotation = self.dp_cert.rotation if self.dp_cert else None
        if rotation is None or not rotation.expiration:
            return None
        return parse_mesh_duration(rotation.expiration)


class Mtls(Strict):
    enabled_backend: str = Field("", alias="enabledBackend")
    backends: list[Backend] = Field(default_factory=list)
    skip_validation: bool = Field(False, alias="skipValidation")

    @property
    def enabled(self) -> Backend | None:
        """The enabled backend (Kuma's ``MTLSEnabled()`` is ``enabledBackend != ""``)."""
        if not self.enabled_backend:
            return None
        return next((b for b in self.backends if b.name == self.enabled_backend), None)


# --------------------------------------------------------------------------- backend conf


class CaCert(Strict):
    rsa_bits: int | None = Field(None, alias="RSAbits")
    expiration: str | None = None


class BuiltinConf(Strict):
    """``BuiltinCertificateAuthorityConfig``; ``RSAbits`` asks for an RSA root (default: EC P-256)."""

    ca_cert: CaCert | None = Field(None, alias="caCert")


class DataSource(Strict):
    """Kuma's ``system.DataSource``: exactly one of file, inline (base64), inlineString, secret."""

    file: str | None = None
    inline: str | None = None
    inline_string: str | None = Field(None, alias="inlineString")
    secret: str | None = None

    def read(self, base: Path | None = None) -> bytes:
        if self.file is not None:
            path = Path(self.file)
            return (path if path.is_absolute() or base is None else base / path).read_bytes()
        if self.inline is not None:
            return base64.b64decode(self.inline, validate=True)
        if self.inline_string is not None:
            return self.inline_string.encode()
        raise ValueError("secret data sources are not supported: use file, inline or inlineString")


class ProvidedConf(Strict):
    """``ProvidedCertificateAuthorityConfig``: the user's CA certificate and key."""

    cert: DataSource | None = None
    key: DataSource | None = None


def builtin_conf(backend: Backend) -> BuiltinConf:
    return BuiltinConf.model_validate(backend.conf or {})


def provided_conf(backend: Backend) -> ProvidedConf:
    return ProvidedConf.model_validate(backend.conf or {})


def check_mtls(mtls: Mtls, mesh: str, where: str = "spec.mtls") -> list[tuple[str, str]]:
    """(field, message) pairs with Kuma's messages where Kuma has one."""
    out: list[tuple[str, str]] = []
    if len(mtls.backends) > ALLOWED_BACKENDS:
        out.append((f"{where}.backends", f"cannot have more than {ALLOWED_BACKENDS} backends"))
    used: set[str] = set()
    for i, backend in enumerate(mtls.backends):
        at = f"{where}.backends[{i}]"
        if backend.name in used:
            out.append((f"{at}.name", f"{backend.name!r} name is already used for another backend"))
        used.add(backend.name)
        if backend.dp_cert and backend.dp_cert.rotation:
            try:
                backend.cert_expiration  # noqa: B018 - parsed for its error
            except ValueError:
                out.append((f"{at}.dpCert.rotation.expiration", "has to be a valid format"))
        out += _check_conf(backend, mesh, at)
    if mtls.enabled_backend and mtls.enabled_backend not in used:
        out.append((f"{where}.enabledBackend", "has to be set to one of the backends in the mesh"))
    return out


def _check_conf(backend: Backend, mesh: str, at: str) -> list[tuple[str, str]]:
    if backend.type == "builtin":
        secret = f"{mesh}.ca-builtin-cert-{backend.name}"
        if len(secret) > 255 or not _DNS_NAME.match(secret):
            return [(f"{at}.name", f"CA secret name {secret!r} must be a lowercase DNS name of at most 255 characters")]
        try:
            conf = builtin_conf(backend)
        except ValidationError as exc:
            return [(f"{at}.conf", _first_error(exc))]
        if conf.ca_cert and conf.ca_cert.expiration:
            try:
                parse_mesh_duration(conf.ca_cert.expiration)
            except ValueError:
                return [(f"{at}.conf.caCert.expiration", "has to be a valid format")]
        if conf.ca_cert and conf.ca_cert.rsa_bits is not None and conf.ca_cert.rsa_bits < 2048:
            return [(f"{at}.conf.caCert.RSAbits", "must be at least 2048")]
        return []
    if backend.type == "provided":
        try:
            pconf = provided_conf(backend)
        except ValidationError as exc:
            return [(f"{at}.conf", _first_error(exc))]
        out = []
        for name, source in (("cert", pconf.cert), ("key", pconf.key)):
            if source is None:
                out.append((f"{at}.conf.{name}", "has to be defined"))
                continue
            given = [x for x in (source.file, source.inline, source.inline_string, source.secret) if x is not None]
            if len(given) != 1:
                out.append((f"{at}.conf.{name}", "must have exactly one of: file, inline, inlineString, secret"))
            elif source.secret is not None:
                out.append((f"{at}.conf.{name}.secret", "is not supported here: use file, inline or inlineString"))
        return out
    return [(f"{at}.type", f"must be one of builtin, provided (is {backend.type!r})")]


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    return f"{loc}: {err['msg']}" if loc else str(err["msg"])
