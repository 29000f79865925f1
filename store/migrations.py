"""The PostgreSQL schema as numbered, up-only migrations, applied when a store opens.

Modelled on Kuma's pkg/plugins/resources/postgres/migrations/data/*.up.sql after all of them ran:
one ``resources`` table keyed (name, mesh, type), spec as JSON text, labels and status as jsonb,
an integer version for compare-and-swap, creation and modification times, and an owner foreign key
so deleting a Mesh deletes what is in it. The NOTIFY trigger sends name/mesh/type only
(1610445956_update_notify_event.up.sql). The version lives in ``schema_migrations`` as golang-migrate
keeps it. ``meshxds_state`` holds what Kuma keeps in other resources (VIPs, generated services, tokens).
"""

from __future__ import annotations

CHANNEL = "resource_events"

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
CREATE TABLE resources (
    name              varchar(253) NOT NULL,
    mesh              varchar(100) NOT NULL,
    type              varchar(100) NOT NULL,
    version           integer NOT NULL,
    spec              text,
    creation_time     timestamp NOT NULL DEFAULT now(),
    modification_time timestamp NOT NULL DEFAULT now(),
    owner_name        varchar(100),
    owner_mesh        varchar(100),
    owner_type        varchar(100),
    labels            jsonb DEFAULT '{}'::jsonb,
    status            jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (name, mesh, type),
    CONSTRAINT owner_fk FOREIGN KEY (owner_name, owner_mesh, owner_type)
        REFERENCES resources (name, mesh, type) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS owner_fk_index ON resources (owner_type, owner_mesh, owner_name);

CREATE OR REPLACE FUNCTION notify_event() RETURNS TRIGGER AS $$
DECLARE
    data json;
BEGIN
    IF (TG_OP = 'DELETE') THEN
        data = json_build_object('name', OLD.name, 'mesh', OLD.mesh, 'type', OLD.type);
    ELSE
        data = json_build_object('name', NEW.name, 'mesh', NEW.mesh, 'type', NEW.type);
    END IF;
    PERFORM pg_notify('resource_events', json_build_object('action', TG_OP, 'data', data)::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER resources_notify_event AFTER INSERT OR UPDATE OR DELETE ON resources
    FOR EACH ROW EXECUTE PROCEDURE notify_event();

CREATE TABLE meshxds_state (
    name              varchar(100) PRIMARY KEY,
    value             jsonb NOT NULL,
    modification_time timestamp NOT NULL DEFAULT now()
);
CREATE OR REPLACE FUNCTION notify_state() RETURNS TRIGGER AS $$
BEGIN
    PERFORM pg_notify('resource_events',
        json_build_object('action', 'STATE', 'data', json_build_object('name', NEW.name))::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER meshxds_state_notify AFTER INSERT OR UPDATE ON meshxds_state
    FOR EACH ROW EXECUTE PROCEDURE notify_state();
""",
    ),
)

LATEST = MIGRATIONS[-1][0]
