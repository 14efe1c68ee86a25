"""PSD/PSB bridge: deblur and sharpen named layers of Photoshop files (not implemented yet)."""
