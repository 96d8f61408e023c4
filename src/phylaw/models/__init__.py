"""Networks only: the video DiT (`dit.py`, size table at the bottom) and its 3D rotary embedding
(`rope.py`). Modules here depend on torch alone and never import data, diffusion or training code;
import the submodules directly (`from phylaw.models.dit import DiT, dit_config`)."""
