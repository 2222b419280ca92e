"""The lab: what develops and tests modfleet, and never ships."""
