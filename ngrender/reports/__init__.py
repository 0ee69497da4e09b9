"""The reports, side by side: the kernel breakdown on this device (``bench --breakdown``, the paper's Figure 5)
and the NGPC projection built on it (``ngpc report``). Both render through RenderSession and write .json, .md and
.png with atomic writes."""
