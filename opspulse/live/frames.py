"""What a live socket sends: whole panels, or only the text and attribute values that changed.

A panel (tile, region) is one server-rendered element with a stable id
(opspulse.live.panels), and a page gets it whole, out of band, the first time. When its
next render differs from the HTML the page has only in text and attribute values (the
same elements with the same attribute names, the same text nodes), the page is sent
those values instead, addressed by the node's position in the panel: its elements and
non-empty text nodes in document order, the panel itself first. Anything else (an
element, an attribute or a text node added or removed, or HTML whose parse this module
cannot vouch for) goes whole, and htmx morphs it in as before.

A frame is the HTML of whole panels and rows; with patches, it starts with one line of
JSON:

    {"patch": {"kpi-revenue": [digest, [[0, "data-kpi-raw", "1204.00"], [6, "$1,204.00"]]]}}
    <li id="order-…" …>…</li>

Each op sets a text node (`[node, text]`) or an attribute (`[node, name, value]`); a long
attribute (the chart's data) gets edits instead, `[node, name, [start, end, text, …]]`,
in UTF-16 units of its old value, as the page counts them. `digest` is the CRC-32 of the
panel the patch applies to (its elements' names and attributes, `class`, `style` and
`hx-*` aside, and its text, as `_piece` below spells them). The page computes it from its
own DOM first, and asks for the panel again (`{"resync": [panel id, …]}`) when it
differs, so a page cannot drift from the server unnoticed
(opspulse/static/src/live-patch.js).

The frames of one delivery are built once per distinct state of the pages
(FrameBuilder): the dashboards of a store that show the same panels get the same string.

A panel's next render usually differs from its last in a few figures, so its shape is
derived from the last one's where it can be (`shape_after`): the HTML is split at its
tags (in C), the pieces compared with the last render's, and only those that differ are
parsed. The whole parse runs for a panel's first render and whenever the pieces do not
line up one to one.
"""

from __future__ import annotations

import html
import json
import re
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import compress, count
from operator import ne
from typing import Any

# Elements whose children belong to the page's scripts (a chart's canvas): their content
# is not addressed, and a morph leaves it alone too (opspulse/static/src/app.js). Their
# attributes are the server's.
OPAQUE_ATTRIBUTE = "data-chart-mount"
# Elements the browser parses differently from their source (raw text, a dropped first
# newline, table fix-ups): a panel with one is always sent whole.
UNPATCHABLE_TAGS = frozenset({
    "script", "style", "textarea", "template", "pre", "listing", "xmp", "plaintext", "iframe",
    "noembed", "noframes", "noscript", "select", "option", "optgroup", "table", "caption", "colgroup", "col",
    "thead", "tbody", "tfoot", "tr", "td", "th", "html", "head", "body", "frameset", "math",
})
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})
# Inside these (foreign content), `/>` closes an element.
_FOREIGN_ROOTS = frozenset({"svg"})
# Elements a browser does not nest in a <p>: it closes the <p> first.
_CLOSES_P = frozenset({
    "address", "article", "aside", "blockquote", "details", "dialog", "div", "dl", "fieldset", "figcaption",
    "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "main", "menu",
    "nav", "ol", "p", "pre", "section", "table", "ul",
})
# Attributes that scripts and htmx may change on the page: not part of the digest.
_UNDIGESTED = frozenset({"class", "style"})
# A resync request names a few panels; anything longer is not one.
RESYNC_MAX_LENGTH = 4096
# Values at least this long are sent as edits, when that is shorter.
EDIT_MIN_LENGTH = 80

_TOKEN = re.compile(
    r"<!--.*?-->"
    r"|</[A-Za-z][^>]*>"
    r"|<([A-Za-z][^\s/>]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>"
    r"|<[!?/][^>]*>",
    re.S,
)
# The same tokens without their groups, for re.split: [text, markup, text, …, text].
_PARTS = re.compile(
    r"(<!--.*?-->"
    r"|</[A-Za-z][^>]*>"
    r"|<[A-Za-z][^\s/>]*(?:[^>\"']|\"[^\"]*\"|'[^']*')*>"
    r"|<[!?/][^>]*>)",
    re.S,
)
_ATTRIBUTE = re.compile(r"""([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")
# An ampersand that does not start a complete character reference: browsers and
# html.unescape need not agree on what it means.
_LOOSE_AMPERSAND = re.compile(r"&(?!(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);)")
# Tokens of a long attribute value (JSON, mostly): strings, runs of other characters, punctuation.
_VALUE_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[^,\[\]{}:"]+|.', re.S)


class Unpatchable(ValueError):
    """HTML whose DOM this module cannot describe with certainty."""


@dataclass(frozen=True)
class Element:
    tag: str
    attributes: tuple[tuple[str, str], ...]


Node = Element | str


# A part of a panel's HTML that makes no node (an end tag, a comment, an empty text),
# and the whitespace around the panel.
NOT_A_NODE = -1
OUTSIDE = -2


@dataclass(frozen=True)
class Shape:
    """A panel's nodes in document order (elements and non-empty text), as a browser
    parses its HTML, and the digest the page computes of them.

    With them, what a next render's shape is derived from: the HTML's parts (text and
    markup, alternately, as `_PARTS` splits it), the node each part makes (its index,
    NOT_A_NODE or OUTSIDE), and each node as the digest spells it.
    """

    nodes: tuple[Node, ...]
    structure: tuple[tuple[str, tuple[str, ...]] | None, ...]
    digest: int
    parts: tuple[str, ...]
    part_nodes: tuple[int, ...]
    pieces: tuple[str, ...]


def _decode(raw: str) -> str:
    if "\x00" in raw:
        raise Unpatchable("a NUL")
    if "\r" in raw:
        raw = raw.replace("\r\n", "\n").replace("\r", "\n")
    if "&" not in raw:
        return raw
    if _LOOSE_AMPERSAND.search(raw):
        raise Unpatchable("an ambiguous ampersand")
    return html.unescape(raw)


def _attributes(raw: str) -> tuple[tuple[str, str], ...]:
    attributes: dict[str, str] = {}
    for match in _ATTRIBUTE.finditer(raw):
        name = match.group(1).lower()
        if name in attributes:
            raise Unpatchable(f"attribute {name} twice")
        double, single, bare = match.group(2, 3, 4)
        value = double if double is not None else single if single is not None else bare or ""
        attributes[name] = _decode(value) if value else value
    return tuple(attributes.items())


def _piece(node: Node) -> str:
    """`node` as the digest spells it (live-patch.js, `digest`)."""
    if isinstance(node, str):
        return "\x04" + node
    return "\x01" + node.tag + "".join(
        f"\x02{name}\x03{value}" for name, value in sorted(node.attributes)
        if name not in _UNDIGESTED and not name.startswith("hx-")
    )


def _crc(pieces: Iterable[str]) -> int:
    return zlib.crc32("".join(pieces).encode())


def _text(text: str, open_elements: list[str], opaque: bool) -> str | None:
    """A text node of the panel; None for whitespace around it."""
    if not open_elements:
        if text.strip():
            raise Unpatchable("text outside the panel")
        return None
    if opaque:
        raise Unpatchable("content in an opaque element")
    return _decode(text)


def _parse(fragment: str) -> Shape | None:
    """The shape of one panel's HTML, or None if it must always be sent whole.

    The HTML must be one element, closed as it is opened (as templates write it): a
    browser's implied ends and fix-ups would make its DOM differ from the source.
    """
    parts = _PARTS.split(fragment)
    nodes: list[Node] = []
    part_nodes: list[int] = []
    open_elements: list[str] = []
    foreign = 0  # open <svg> elements
    opaque = False
    try:
        for index, part in enumerate(parts):
            if not index % 2:
                node = _text(part, open_elements, opaque) if part else None
                if node is not None:
                    part_nodes.append(len(nodes))
                    nodes.append(node)
                else:
                    part_nodes.append(OUTSIDE if part else NOT_A_NODE)
                continue
            part_nodes.append(NOT_A_NODE)
            if part.startswith("<!--"):
                continue
            match = _TOKEN.match(part)
            tag = match.group(1) if match else None
            if tag is None:
                if not part.startswith("</"):
                    raise Unpatchable(f"markup {part[:20]!r}")
                closed = part[2:-1].strip().lower()
                if not open_elements or open_elements.pop() != closed:
                    raise Unpatchable(f"</{closed}> closes another element")
                foreign -= closed in _FOREIGN_ROOTS
                opaque = False
                continue
            tag = tag.lower()
            if opaque or (nodes and not open_elements):
                raise Unpatchable("an element in an opaque one, or a second element")
            if tag in UNPATCHABLE_TAGS:
                raise Unpatchable(f"a <{tag}>")
            if "p" in open_elements and tag in _CLOSES_P:
                raise Unpatchable(f"a <{tag}> in a <p>")
            attributes = _attributes(match.group(2))
            part_nodes[-1] = len(nodes)
            nodes.append(Element(tag, attributes))
            if tag not in _VOID and not ((foreign or tag in _FOREIGN_ROOTS) and part.endswith("/>")):
                open_elements.append(tag)
                foreign += tag in _FOREIGN_ROOTS
                opaque = OPAQUE_ATTRIBUTE in match.group(2) and any(name == OPAQUE_ATTRIBUTE for name, _ in attributes)
    except Unpatchable:
        return None
    if open_elements or not nodes:
        return None
    frozen = tuple(nodes)
    structure = tuple(
        None if isinstance(node, str) else (node.tag, tuple(name for name, _ in node.attributes)) for node in frozen
    )
    pieces = tuple(_piece(node) for node in frozen)
    return Shape(frozen, structure, _crc(pieces), tuple(parts), tuple(part_nodes), pieces)


def _differing(old: Sequence[str], new: Sequence[str]) -> Iterator[int]:
    """The indices at which two lists of strings of the same length differ."""
    return compress(count(), map(ne, old, new))


def _derive(old: Shape, fragment: str) -> Shape | None:
    """The shape of `fragment` from `old`'s, when the two differ only in text and
    attribute values; None when they may differ otherwise (then `_parse` decides).

    Whatever it returns, `_parse(fragment)` would return the same.
    """
    try:
        return _derived(old, _PARTS.split(fragment))
    except Unpatchable:
        return None


def _derived(old: Shape, parts: list[str]) -> Shape | None:
    """`_derive`, from the new HTML's parts."""
    if len(parts) != len(old.parts):
        return None
    nodes: list[Node] | None = None
    pieces: list[str] = []
    for index in _differing(old.parts, parts):
        before, after = old.parts[index], parts[index]
        at = old.part_nodes[index]
        if at == OUTSIDE and not after.strip():
            continue
        if at < 0:
            return None
        if not index % 2:
            if not after:
                return None
            node: Node = _decode(after)
        else:
            element = old.nodes[at]
            assert isinstance(element, Element)
            match = _TOKEN.match(after)
            tag = match.group(1) if match else None
            if tag is None or tag.lower() != element.tag or after.endswith("/>") != before.endswith("/>"):
                return None
            attributes = _attributes(match.group(2))
            if len(attributes) != len(element.attributes) or any(
                name != old_name for (name, _), (old_name, _) in zip(attributes, element.attributes, strict=True)
            ):
                return None
            node = Element(element.tag, attributes)
        if nodes is None:
            nodes, pieces = list(old.nodes), list(old.pieces)
        nodes[at] = node
        pieces[at] = _piece(node)
    if nodes is None:  # the same nodes (whitespace around the panel changed)
        return Shape(old.nodes, old.structure, old.digest, tuple(parts), old.part_nodes, old.pieces)
    return Shape(tuple(nodes), old.structure, _crc(pieces), tuple(parts), old.part_nodes, tuple(pieces))


class _ShapeCache:
    """The shapes of the panels' latest HTML, old and new, least recently used first."""

    # Big enough for the panels, old and new, of a few hundred stores on screen.
    size = 2048

    def __init__(self) -> None:
        self.shapes: OrderedDict[str, Shape | None] = OrderedDict()

    def shape(self, fragment: str, previous: Shape | None = None) -> Shape | None:
        try:
            found = self.shapes[fragment]
        except KeyError:
            pass
        else:
            self.shapes.move_to_end(fragment)
            return found
        found = None
        if previous is not None:
            found = _derive(previous, fragment)
        if found is None:
            found = _parse(fragment)
        self.shapes[fragment] = found
        if len(self.shapes) > self.size:
            self.shapes.popitem(last=False)
        return found

    def clear(self) -> None:
        self.shapes.clear()


_shapes = _ShapeCache()


def shape(fragment: str) -> Shape | None:
    """Return the nodes of one panel's HTML, or None if it must always be sent whole
    (see `_parse`)."""
    return _shapes.shape(fragment)


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def edits(old: str, new: str) -> list[Any] | None:
    """Edits that turn `old` into `new`, flattened as [start, end, text, …] in UTF-16 units
    of `old`, ascending; None if none would be shorter than `new`.

    Linear: token by token when both have as many tokens (the chart's data, one point
    later), else the one span between their common start and end.
    """
    old_tokens = _VALUE_TOKEN.findall(old)
    new_tokens = _VALUE_TOKEN.findall(new)
    spans: list[tuple[int, int, int, int]] = []  # token ranges: old start, old end, new start, new end
    if len(old_tokens) == len(new_tokens):
        index = 0
        while index < len(old_tokens):
            if old_tokens[index] == new_tokens[index]:
                index += 1
                continue
            end = index
            while end < len(old_tokens) and old_tokens[end] != new_tokens[end]:
                end += 1
            spans.append((index, end, index, end))
            index = end
    else:
        start = 0
        limit = min(len(old_tokens), len(new_tokens))
        while start < limit and old_tokens[start] == new_tokens[start]:
            start += 1
        back = 0
        while back < limit - start and old_tokens[-1 - back] == new_tokens[-1 - back]:
            back += 1
        spans.append((start, len(old_tokens) - back, start, len(new_tokens) - back))
    offsets = [0]
    length = len if old.isascii() else _utf16_length
    for token in old_tokens:
        offsets.append(offsets[-1] + length(token))
    flat: list[Any] = []
    for old_start, old_end, new_start, new_end in spans:
        flat += [offsets[old_start], offsets[old_end], "".join(new_tokens[new_start:new_end])]
    return flat if len(_json(flat)) < len(_json(new)) else None


def patch_ops(old: Shape, new: Shape) -> list[list[Any]] | None:
    """The ops that turn the page's `old` panel into `new`, or None if their structures differ."""
    if old.structure != new.structure:
        return None
    ops: list[list[Any]] = []
    if old.part_nodes is new.part_nodes or old.part_nodes == new.part_nodes:
        # Laid out alike (the usual case, a shape derived from the other's): only the
        # nodes of the parts that differ may differ.
        at = old.part_nodes
        changed = sorted({at[part] for part in _differing(old.parts, new.parts) if at[part] >= 0})
    else:
        changed = range(len(new.nodes))
    for index in changed:
        before, after = old.nodes[index], new.nodes[index]
        if before == after:
            continue
        if isinstance(after, str):
            ops.append([index, after])
            continue
        assert isinstance(before, Element)
        for (name, old_value), (_, value) in zip(before.attributes, after.attributes, strict=True):
            if old_value == value:
                continue
            spliced = edits(old_value, value) if len(value) >= EDIT_MIN_LENGTH else None
            ops.append([index, name, value if spliced is None else spliced])
    return ops


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def patch(old_html: str, new_html: str) -> list[Any] | None:
    """Return `[digest of old, ops]` for a panel that the page has as `old_html`, or None
    if `new_html` must be sent whole (a structural change, or no shorter patch)."""
    found = _patch(old_html, new_html)
    return None if found is None else found[0]


def _patch(old_html: str, new_html: str) -> tuple[list[Any], str] | None:
    """`patch`, with its JSON."""
    old = shape(old_html)
    new = _shapes.shape(new_html, old)
    if old is None or new is None:
        return None
    ops = patch_ops(old, new)
    if ops is None:
        return None
    found = [old.digest, ops]
    text = _json(found)
    return (found, text) if len(text) < len(new_html) else None


def build_frame(rendered: Mapping[str, str], previous: tuple[str | None, ...], rows: str = "") -> str:
    """The frame that brings a page showing `previous` (the HTML it has of each panel of
    `rendered`, in order; None if not known) to `rendered`, then adds `rows`."""
    patches: list[str] = []  # "id":[digest,ops] of each, in JSON
    whole = []
    for (panel_id, new_html), old_html in zip(rendered.items(), previous, strict=True):
        if old_html is new_html or old_html == new_html:
            continue
        found = _patch(old_html, new_html) if old_html is not None else None
        if found is None:
            whole.append(new_html)
        else:
            patches.append(f"{_json(panel_id)}:{found[1]}")
    head = '{"patch":{' + ",".join(patches) + "}}\n" if patches else ""
    return head + "".join(whole) + rows


class FrameBuilder:
    """The frames of one delivery of `rendered` (and `rows`), each distinct one built once.

    Pages that show the same HTML of these panels (the usual case: every dashboard of a
    store was sent the same frames) get the same frame, the same string.
    """

    def __init__(self, rendered: Mapping[str, str], rows: str = "") -> None:
        self.rendered = rendered
        self.rows = rows
        self.frames: dict[tuple[str | None, ...], str] = {}

    def frame_for(self, sent: Mapping[str, str]) -> str:
        """The frame for a page that was sent `sent` (panel id → HTML); "" if nothing changed."""
        previous = tuple(sent.get(panel_id) for panel_id in self.rendered)
        frame = self.frames.get(previous)
        if frame is None:
            frame = self.frames[previous] = build_frame(self.rendered, previous, self.rows)
        return frame


def resync_request(text: str | None, known: Iterable[str] | None = None) -> set[str]:
    """The ids (among `known`, if given) that a page asks to be sent whole again
    (`{"resync": [id, …]}`); empty if `text` is no such request."""
    if not text or len(text) > RESYNC_MAX_LENGTH:
        return set()
    try:
        request = json.loads(text)
    except ValueError:
        return set()
    asked = request.get("resync") if isinstance(request, dict) else None
    if not isinstance(asked, list):
        return set()
    asked_ids = {panel_id for panel_id in asked if isinstance(panel_id, str)}
    return asked_ids if known is None else asked_ids & set(known)
