"""Files in and out: mp4 and gif videos (``video``), npz arrays memory-mapped where stored
uncompressed (``npz``), and the authors' HDF5 layout (``phyworld``)."""
