"""Recipe provenance in the document's XMP packet (image resource 1060).

XMP is how Photoshop keeps metadata it does not understand: properties in a foreign namespace
survive its saves, and readers that do not know the namespace skip it. The bridge adds (or
replaces) one ``rdf:Description`` in the ``clearshot`` namespace holding an ``rdf:Seq`` of
runs, each the recipe provenance (:attr:`core.layer_stack.LayerStack.provenance` plus the
layer it ran on) as JSON text. Every other byte of the packet is kept; the packet's trailing
padding absorbs the insertion where it is long enough (the XMP spec's in-place update), so the
packet usually keeps its size.

Refused (the provenance is then not stored, and the report says why) when the packet is not
UTF-8, declares a DOCTYPE or entities, has no single ``</rdf:RDF>``, or does not parse after
the edit.
"""

from __future__ import annotations

import json
import re
from xml.sax.saxutils import escape, unescape

__all__ = ["NAMESPACE", "XMPError", "add_provenance", "read_provenance", "new_packet"]

#: The clearshot XMP namespace (prefix ``clearshot``).
NAMESPACE = "https://clearshot.invalid/ns/provenance/1.0/"


class XMPError(ValueError):
    """The XMP packet cannot be updated safely (the provenance is not stored)."""


_OURS = re.compile(
    r"[ \t]*<rdf:Description rdf:about=\"\" xmlns:clearshot=\"" + re.escape(NAMESPACE)
    + r"\">.*?</rdf:Description>\n?", re.S)
_ITEM = re.compile(r"<rdf:li>(.*?)</rdf:li>", re.S)
_END = re.compile(r"(\s*)<\?xpacket end=")


def new_packet() -> bytes:
    """An empty XMP packet (for documents that have none)."""
    body = ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
            ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
            ' </rdf:RDF>\n</x:xmpmeta>\n' + " " * 2000 + '\n<?xpacket end="w"?>')
    return body.encode("utf-8")


def _text(packet: bytes) -> str:
    try:
        text = packet.decode("utf-8")
    except UnicodeDecodeError:
        msg = "the XMP packet is not UTF-8"
        raise XMPError(msg) from None
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        msg = "the XMP packet declares a DOCTYPE or entities"
        raise XMPError(msg)
    return text


def read_provenance(packet: bytes) -> list[dict]:
    """The clearshot runs stored in a packet, oldest first (empty when there are none)."""
    m = _OURS.search(_text(packet))
    if m is None:
        return []
    return [json.loads(unescape(s)) for s in _ITEM.findall(m.group(0))]


def add_provenance(packet: bytes, runs: list[dict]) -> bytes:
    """The packet with ``runs`` appended to its clearshot provenance (JSON-serialisable dicts).

    Raises :class:`XMPError` when the packet cannot be updated safely.
    """
    import xml.etree.ElementTree as ET

    stripped = packet.rstrip(b"\0")  # some writers pad the resource with NULs
    trail = packet[len(stripped):]
    text = _text(stripped)
    old = read_provenance(stripped)
    text = _OURS.sub("", text, count=1)
    if text.count("</rdf:RDF>") != 1:
        msg = "the XMP packet has no single </rdf:RDF> to add the provenance to"
        raise XMPError(msg)
    items = "".join(f"     <rdf:li>{escape(json.dumps(r, ensure_ascii=True, default=str))}"
                    "</rdf:li>\n" for r in [*old, *runs])
    ours = (f'  <rdf:Description rdf:about="" xmlns:clearshot="{NAMESPACE}">\n'
            "   <clearshot:runs>\n    <rdf:Seq>\n" + items
            + "    </rdf:Seq>\n   </clearshot:runs>\n  </rdf:Description>\n")
    at = text.index("</rdf:RDF>")
    line = text.rfind("\n", 0, at) + 1
    if text[line:at].strip():  # </rdf:RDF> shares its line with content: insert right here
        line = at
    text = text[:line] + ours + text[line:]
    end = _END.search(text)
    if end is not None:  # the insertion comes out of the trailing padding where it can
        pad = end.group(1)
        grow = len(text.encode("utf-8")) - len(stripped)
        if 0 < grow < len(pad) - 1:
            keep = pad[: len(pad) - grow]
            text = text[: end.start(1)] + keep + text[end.end(1) :]
    inner = text[text.find("<x:xmpmeta") if "<x:xmpmeta" in text else text.find("<rdf:RDF"):]
    inner = inner[: inner.rfind("<?xpacket")] if "<?xpacket" in inner else inner
    try:
        ET.fromstring(inner.strip())
    except ET.ParseError as exc:
        msg = f"the XMP packet does not parse after adding the provenance ({exc})"
        raise XMPError(msg) from None
    return text.encode("utf-8") + trail
