"""Model training: the static layer (HGNN) and the dynamic layer (two-tower)."""
