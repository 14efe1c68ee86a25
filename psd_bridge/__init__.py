"""PSD/PSB bridge: deblur and sharpen named layers of Photoshop files, written back losslessly.

``psd_bridge.api`` is the Python API (``open_document``, ``PSDDocument.select``,
``apply_to_layer``, ``save``), ``psd_bridge.records`` the byte-level tier (sections, channel
codecs, new records), ``psd_bridge.cli`` the ``clearshot psd`` command. psd-tools is imported
only when a document is opened.
"""
