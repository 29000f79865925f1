"""Protobuf wire encoding shared by every stage: translators pack typed configs, snapshots encode
resources once, the server frames responses. The ground floor of the pipeline."""
