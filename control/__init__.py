"""The control plane as it runs: the service that feeds the xDS server from the resource files.

Sits between ``xds`` and the commands: imports the pipeline and the server, and is imported by
``cli``, ``demo`` and the tests (never the other way round).
"""
