"""The running control plane: store → Mirror → Catalog → Builder → xDS cache, leader duties, metrics."""
