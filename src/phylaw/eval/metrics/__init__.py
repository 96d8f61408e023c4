"""Per-video metrics of scored videos: physics (the velocity error e and its companions,
``physics``), what each generated video did (velocity, size, colour, shape class:
``attributes``), attribute-pair outcomes and the priority order of the Sec. 5.3 studies
(``outcomes``), and fidelity to the ground truth (PSNR, SSIM, LPIPS, FVD, ``fidelity``; the I3D
and AlexNet networks they need live in ``nets``)."""
