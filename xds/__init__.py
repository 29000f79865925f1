"""The ADS server: serves each proxy's ``Snapshot`` to Envoy over SotW and Delta xDS.

Modules: ``server`` (grpc.aio wiring, bytes in/out), ``wire`` (field-skipping request parser,
hand-framed responses), ``stream`` (state and push sequencing shared by both flavours),
``subscription`` (what a client asked for), ``ledger`` (what it holds: sent, ACKed, NACKed),
``sotw`` / ``delta`` (the two protocols), ``diff`` (changed names between two snapshot maps,
shared by streams), ``cache`` (snapshots by node id, wakeups, ACK/NACK status), ``debug`` (HTTP
debug endpoint) and ``bootstrap`` (Envoy bootstrap). Nothing here runs Envoy or translates.

Protocol decisions (see xds-protocol-notes §6):
- Unknown node id: the stream ends with NOT_FOUND (INVALID_ARGUMENT without a node id) and a
  log line; Envoy retries with backoff and is served once its Dataplane is in the input.
  A node removed by a reload gets NOT_FOUND the same way and keeps its last config.
- Nonces are ``<process uuid>-<stream>-<counter>``: never valid on another stream or server.
- SotW ignores stale-nonce requests (Envoy repeats its full subscription with the next ACK);
  Delta applies subscription changes whatever the nonce.
- A NACK (``error_detail``) is recorded per node (version, nonce, Envoy's message) and never
  answered. What Envoy holds is tracked exactly (ACK-confirmed state plus in-flight responses;
  a NACK drops the rejected one), and the rejected content is not sent again while the snapshot
  still holds all of it (Envoy does not say which resource was bad): no NACK loop, no storm.
- Warming: every Cluster sent as added/changed gets a fresh CLA right after it (forced even if
  the endpoints did not change); LDS/RDS wait until Envoy accepted that CDS response and the
  new clusters got their CLAs, and while Envoy rejects clusters the snapshot still has.
- Order: CDS, EDS, LDS, RDS; cluster removals wait until listeners/routes are sent and answered.
- These rules are checked under random interleavings, NACKs included, by a model-based test
  (tests/test_xds_model.py) against a simulated Envoy, and end to end with real Envoy.
- EDS/RDS: only names Envoy asked for; nothing is ever sent for a type Envoy does not watch.
- Push cost: a type whose snapshot version and stream state did not change is skipped in O(1);
  after a snapshot-only change a named type looks only at the names that changed; an ACK whose
  resource_names bytes repeat the subscription is not decoded again.
"""
