"""A hardened XML parser: no DTDs, no entity expansion, no network."""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

from .base import IngestError, release

_RELEASE_STEP = 8 * 1024 * 1024

_PARSER_ARGS = dict(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=True,  # 100k-case reports exceed libxml2's default depth/size guards
    remove_comments=True,
    remove_pis=True,
)


def parse_xml(data: bytes, source: str, external_dtd: bool = False) -> etree._Element:
    """Parse ``data`` or raise :class:`IngestError` with one line naming the reason.

    Documents with a DOCTYPE are refused outright: test reports never need one, and it is
    how entity-expansion and external-entity attacks arrive. ``external_dtd``: a DOCTYPE
    that only names an external DTD is allowed (JaCoCo and old Cobertura reports carry
    one); it is never loaded, and an internal subset or an ENTITY is still refused.
    """
    if external_dtd:
        return _parse_with_doctype(data, source)
    _refuse_dtd(data, source)
    parser = etree.XMLParser(**_PARSER_ARGS)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as err:
        raise IngestError(f"{source}: not well-formed XML: {_reason(err)}") from None
    if root is None:
        raise IngestError(f"{source}: empty XML document")
    _refuse_dtd(data, source, root)
    return root


def _parse_with_doctype(data, source: str) -> etree._Element:
    head = bytes(data[:4096]).upper()
    start = head.find(b"<!DOCTYPE")
    if b"<!ENTITY" in head or (start >= 0 and b"[" in head[start:head.find(b">", start)]):
        raise IngestError(f"{source}: XML declaring entities or an internal DTD subset is "
                          "not accepted (entity attacks)")
    try:
        root = etree.fromstring(bytes(data), etree.XMLParser(**_PARSER_ARGS))
    except etree.XMLSyntaxError as err:
        raise IngestError(f"{source}: not well-formed XML: {_reason(err)}") from None
    if root is None:
        raise IngestError(f"{source}: empty XML document")
    dtd = root.getroottree().docinfo.internalDTD  # (an external-only DOCTYPE has an empty one)
    if dtd is not None and (list(dtd.iterentities()) or list(dtd.elements())):
        raise IngestError(f"{source}: XML with an internal DTD subset is not accepted")
    return root


def _refuse_dtd(data, source: str, root: etree._Element | None = None) -> None:
    """Refuse a DOCTYPE or ENTITY in the head of ``data`` (before parsing), or a DOCTYPE
    the parsed document declares (``root``, after)."""
    if root is None:
        head = bytes(data[:4096]).lstrip().upper()
        declared = b"<!DOCTYPE" in head or b"<!ENTITY" in head
    else:
        declared = bool(root.getroottree().docinfo.doctype)
    if declared:
        raise IngestError(f"{source}: XML with a DTD/DOCTYPE is not accepted (entity attacks)")


class _Reader:
    """A file-like view of bytes (or an mmap) for lxml, without copying them. A mapped
    report's pages are given back behind the reader, so reading it costs no more memory
    than the parse itself."""

    def __init__(self, data) -> None:
        self._data, self._view, self._pos, self._released = data, memoryview(data), 0, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._view) if n < 0 else self._pos + n
        chunk = self._view[self._pos:end].tobytes()
        self._pos += len(chunk)
        if self._pos - self._released >= _RELEASE_STEP:
            release(self._data, self._released, self._pos)
            self._released = self._pos
        return chunk


def iter_xml(data, source: str, tags: tuple[str, ...]) -> Iterator[tuple[str, etree._Element]]:
    """``(event, element)`` for the start and end of each element named in ``tags``, read
    incrementally: the caller clears what it has used, so memory stays bounded whatever
    the document's size (the whole tree of a 100 MB report takes over 1 GB). Last comes
    ``("done", root)``. The same hardening as :func:`parse_xml`."""
    _refuse_dtd(data, source)
    events = etree.iterparse(_Reader(data), events=("start", "end"), tag=tags, **_PARSER_ARGS)
    first = True
    try:
        for event, el in events:
            if first:
                first = False
                _refuse_dtd(data, source, el)
            yield event, el
    except etree.XMLSyntaxError as err:
        raise IngestError(f"{source}: not well-formed XML: {_reason(err)}") from None
    if events.root is None:
        raise IngestError(f"{source}: empty XML document")
    yield "done", events.root


def _reason(err: etree.XMLSyntaxError) -> str:
    """libxml2 says "Unregistered error message" for some errors; its code says more."""
    text = str(err)
    last = err.error_log.last_error if err.error_log else None
    if "Unregistered error message" in text and last is not None:
        code = last.type_name.removeprefix("ERR_").replace("_", " ").lower()
        return f"{code}, line {last.line}, column {last.column}"
    return text


def local(tag: object) -> str:
    """Tag name without namespace (``{ns}testcase`` → ``testcase``)."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]
