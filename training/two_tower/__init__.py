"""The unified two-tower model (the dynamic layer): one item tower for every item type."""
