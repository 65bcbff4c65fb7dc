"""The nerfstudio dataset (labels, motion and optical flow per pixel) and the pixel sampler of the plugin."""
