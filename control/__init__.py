"""The control plane as it runs: the services that feed the xDS server from the resource files or a store.

Sits between ``store`` and the commands: imports the pipeline, the server and the stores, and is imported
by ``api``, ``cli``, ``demo`` and the tests (never the other way round). ``service`` watches files;
``store_service`` follows a Store (Mirror → Builder, leader duties); ``metrics`` is the Prometheus side.
"""
