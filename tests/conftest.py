"""Test-session settings: the colour-table cache (`eval.tablecache`) lives in a temporary
folder, so the suite neither reads nor fills the user's ~/.cache (subprocesses inherit it)."""

import atexit
import os
import shutil
import tempfile

if "PHYLAW_CACHE" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="phylaw-test-cache-")
    os.environ["PHYLAW_CACHE"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
