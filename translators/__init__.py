"""Catalog → Envoy resources per proxy: pure functions, no I/O."""

from translators.proxy import ProxyResources, translate

__all__ = ["ProxyResources", "translate"]
