"""Files in and out: npz arrays (memory-mapped where stored uncompressed)."""
