"""Catalog → Envoy resources per proxy: pure functions, no I/O."""

from meshxds.translators.proxy import ProxyResources, ResourceSet, translate

__all__ = ["ProxyResources", "ResourceSet", "translate"]
