"""Security between the resources and the translators: CAs, workload identities, dataplane tokens and the
state directory that keeps them across restarts. Nothing here builds Envoy messages; the translators
only reference the secrets this package's ``Credentials`` carry."""
