"""Parameter spaces, named splits, sharded states, datasets rendered on the fly, import/export."""
