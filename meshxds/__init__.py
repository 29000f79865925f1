"""meshxds: a Python xDS control plane for Envoy with Kuma's MeshService semantics.

The stages live in the checkout's top-level folders (``codec``, ``resources``, ``translators``, ``snapshots``,
``xds``, ``control``, ``cli``, ``demo``); this package holds links to them so every module imports as
``meshxds.<stage>`` and the wheel installs one top-level name only.
"""
