"""Parameter spaces, named splits, sharded state storage, render-on-the-fly datasets, import/export."""
