"""Kuma's HTTP API over a Store: resources, paging, Kuma's error JSON, admin token, inspection."""
