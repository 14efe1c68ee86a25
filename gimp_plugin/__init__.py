"""GIMP 3 plug-in: Filters > Deblur, a thin adapter over :mod:`core` (not implemented yet)."""
