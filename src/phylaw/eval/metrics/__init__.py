"""Per-video metrics of scored videos: physics (the velocity error e and its companions,
``physics``) and fidelity to the ground truth (PSNR, SSIM, LPIPS, FVD, ``fidelity``; the I3D
and AlexNet networks they need live in ``nets``)."""
