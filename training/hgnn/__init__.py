"""Heterogeneous GraphSAGE over the item-item co-interaction graph (the static layer)."""
