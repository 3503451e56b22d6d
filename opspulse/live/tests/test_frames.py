"""Frames that carry only what changed: which changes go as patches, what the patches
say, and that a page applying them ends up with the panel the server rendered."""

from __future__ import annotations

import json

import pytest
from django.template.loader import render_to_string
from hypothesis import given, settings, strategies as st

from opspulse.live import frames
from opspulse.live.panels import KPI_REVENUE, REVENUE_CHART, TOP_PRODUCTS
from tests.support.live import LivePage, patched_html


def top_products(*products: tuple[str, int, str]) -> str:
    return render_to_string("live/panels/top_products.html", {
        "panel_id": TOP_PRODUCTS, "oob": True,
        "products": [
            {"title": title, "units": str(units), "revenue": revenue, "share": max(round(units * 100 / products[0][1]), 2)}
            for title, units, revenue in products
        ],
    })


def kpi(value: str, *, direction: str = "up", text: str = "+12%") -> str:
    return render_to_string("live/panels/kpi.html", {
        "panel_id": KPI_REVENUE, "oob": True, "label": "Revenue today", "value": value, "raw": value.strip("$").replace(",", ""),
        "raw_day": "2026-12-07", "detail": "",
        "comparisons": [{"label": "Yesterday", "long_label": "Yesterday by this time", "known": True,
                         "value": "$10.00", "direction": direction, "text": text}],
    })


def applied(old: str, new: str) -> str:
    """The page's panel after the frame that brings `old` to `new`."""
    page = LivePage()
    page.apply(old)
    page.apply(frames.build_frame({TOP_PRODUCTS if TOP_PRODUCTS in old else KPI_REVENUE: new}, (old,)))
    return next(iter(page.html.values()))


def patch_of(frame: str) -> dict:
    head, newline, _ = frame.partition("\n")
    assert newline and head.startswith('{"patch":'), frame[:80]
    return json.loads(head)["patch"]


def test_a_figure_that_changed_is_sent_as_its_text_and_attributes_alone():
    old, new = kpi("$1,200.00"), kpi("$1,284.50", text="+19%")

    frame = frames.build_frame({KPI_REVENUE: new}, (old,))

    digest, ops = patch_of(frame)[KPI_REVENUE]
    assert digest == frames.shape(old).digest
    assert [op[-1] for op in ops] == ["1284.50", "$1,284.50", "+19%"]
    assert frame.endswith("\n") and len(frame) < 120
    assert frames.shape(applied(old, new)).nodes == frames.shape(new).nodes


def test_product_names_go_as_the_text_the_page_shows_not_as_html():
    old = top_products(("Salt & Pepper <Deluxe>", 5, "$50.00"), ("Tom's \"big\" mug", 3, "$36.00"))
    # The mug overtakes the salt and pepper set: the two rows swap their text.
    new = top_products(("Tom's \"big\" mug", 6, "$72.00"), ("Salt & Pepper <Deluxe>", 5, "$50.00"))

    frame = frames.build_frame({TOP_PRODUCTS: new}, (old,))

    _, ops = patch_of(frame)[TOP_PRODUCTS]
    values = [op[-1] for op in ops]
    assert "Salt & Pepper <Deluxe>" in values and "Tom's \"big\" mug" in values
    assert "&amp;" not in frame and "&lt;" not in frame and "&#x27;" not in frame
    assert frames.shape(applied(old, new)).nodes == frames.shape(new).nodes


def test_entities_and_whitespace_are_read_as_a_browser_reads_them():
    shape = frames.shape('<div id="p" title="a &amp; b &quot;c&quot;">\n  <p>x &lt;y&gt; &#x27;z&#39;&nbsp;</p>\n</div>')

    assert shape.nodes == (
        frames.Element("div", (("id", "p"), ("title", 'a & b "c"'))),
        "\n  ",
        frames.Element("p", ()),
        "x <y> 'z'\xa0",
        "\n",
    )


def test_a_change_of_whitespace_alone_is_a_patch_of_that_text_node():
    old = '<div id="p">\n  <p>1</p>\n</div>'
    new = '<div id="p">\n    <p>1</p>\n</div>'

    assert frames.patch(old, new) == [frames.shape(old).digest, [[1, "\n    "]]]


@pytest.mark.parametrize("old, new", [
    # An arrow appears: the trend was flat.
    (kpi("$1,200.00", direction="flat", text="0%"), kpi("$1,284.50", text="+7%")),
    # A best seller more.
    (top_products(("Mug", 2, "$24.00")), top_products(("Mug", 2, "$24.00"), ("Tee", 1, "$25.00"))),
    # A text that becomes empty is a text node less.
    ('<div id="p"><p>1</p></div>', '<div id="p"><p></p></div>'),
    # An attribute added.
    ('<div id="p"><p>1</p></div>', '<div id="p"><p hidden>1</p></div>'),
], ids=["arrow_case", "row_case", "empty_text_case", "attribute_case"])
def test_a_structural_change_sends_the_whole_panel(old, new):
    panel_id = KPI_REVENUE if KPI_REVENUE in old else TOP_PRODUCTS

    frame = frames.build_frame({panel_id: new}, (old,))

    assert frame == new


@pytest.mark.parametrize("html", [
    '<div id="p"><table><tr><td>1</td></tr></table></div>',
    '<div id="p"><textarea>1</textarea></div>',
    '<div id="p"><pre>\n1</pre></div>',
    '<div id="p">fish &chips=1</div>',
    '<div id="p"><div data-chart-mount><span>1</span></div></div>',
], ids=["table_case", "textarea_case", "pre_case", "ambiguous_ampersand_case", "filled_chart_mount_case"])
def test_html_a_browser_may_parse_otherwise_is_always_sent_whole(html):
    assert frames.shape(html) is None
    assert frames.build_frame({"p": html.replace("1", "2")}, (html,)) == html.replace("1", "2")


def test_a_long_attribute_is_sent_as_edits_counted_as_the_page_counts():
    # Labels before the change take two UTF-16 units each (emoji): offsets must count them so.
    def chart(value: float, now: float) -> str:
        data = {"x": [0, 1, now, 2, 3], "today": [0, value / 2, value, None, None], "labels": ["🌙", "🌅", "now", "☀️", "🌇"],
                "now": now, "currency": "USD"}
        return (f'<section id="{REVENUE_CHART}" hx-swap-oob="morph" data-chart="'
                + json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace('"', "&quot;")
                + '"><div data-chart-mount></div></section>')

    old, new = chart(80.0, 1.5), chart(95.5, 1.501)

    [_, [[node, name, edits]]] = frames.patch(old, new)

    assert (node, name) == (0, "data-chart")
    assert len(edits) == 3 * 4  # x, today (twice: half and full), now
    page = LivePage()
    page.apply(old)
    page.apply(frames.build_frame({REVENUE_CHART: new}, (old,)))
    assert json.loads(page.attribute(REVENUE_CHART, "data-chart")) == json.loads(frames.shape(new).nodes[0].attributes[2][1])


def test_patched_html_rebuilds_every_node_of_the_new_panel():
    old = top_products(("Salt & Pepper <Deluxe>", 5, "$50.00"), ("Mug", 3, "$36.00"))
    new = top_products(("Salt & Pepper <Deluxe>", 9, "$90.00"), ("Mug", 4, "$48.00"))
    [_, ops] = frames.patch(old, new)

    assert frames.shape(patched_html(old, ops)).nodes == frames.shape(new).nodes


def test_pages_in_the_same_state_get_the_same_frame_built_once():
    old, new = kpi("$1,200.00"), kpi("$1,284.50")
    builder = frames.FrameBuilder({KPI_REVENUE: new}, rows="<li>row</li>")

    first = builder.frame_for({KPI_REVENUE: old})
    same = builder.frame_for({KPI_REVENUE: old})
    joined_late = builder.frame_for({})
    current = builder.frame_for({KPI_REVENUE: new})

    assert same is first and first.startswith('{"patch":') and first.endswith("<li>row</li>")
    assert joined_late == new + "<li>row</li>"
    assert current == "<li>row</li>"
    assert len(builder.frames) == 3


def test_a_resync_request_names_panels_and_nothing_else():
    known = [KPI_REVENUE, TOP_PRODUCTS]

    assert frames.resync_request('{"resync": ["kpi-revenue", "nope", 3]}', known) == {KPI_REVENUE}
    assert frames.resync_request('{"resync": "kpi-revenue"}', known) == set()
    assert frames.resync_request("not json", known) == set()
    assert frames.resync_request('{"resync": ["kpi-revenue"]}' + " " * frames.RESYNC_MAX_LENGTH, known) == set()


# Two renders of one panel: each text and attribute value, and now and then a tag, is
# drawn twice, once for each render, so most pairs differ only in values and some in
# structure (a text that empties, a tag that changes, an attribute that goes), and
# values include what a browser reads otherwise (entities, an ambiguous ampersand,
# carriage returns).
TEXTS = ["", " ", "\n  ", "1", "$1,204.50", "+12%", "a &amp; b", "fish &chips", "x &lt;y&gt;", "a\r\nb", "–"]
VALUES = ["", "up", "1204.50", "a &quot;b&quot;", "&bogus", "[" + ",".join(["1.5"] * 30) + "]", "x y"]
NAMES = ["class", "title", "data-kpi-raw", "hx-swap-oob", "data-chart-mount", "d"]
TAGS = ["div", "p", "span", "li", "svg", "path", "br", "table"]


@st.composite
def two_renders(draw, depth: int = 0) -> tuple[str, str]:
    def pair(choices: list[str]) -> tuple[str, str]:
        first = draw(st.sampled_from(choices))
        return first, draw(st.sampled_from(choices)) if draw(st.booleans()) else first

    tags = pair(TAGS) if depth and draw(st.integers(0, 9)) == 0 else (draw(st.sampled_from(TAGS[:5])),) * 2
    names = draw(st.lists(st.sampled_from(NAMES), max_size=3, unique=True))
    values = [pair(VALUES) for _ in names]
    children = [
        draw(two_renders(depth + 1)) if depth < 2 and draw(st.booleans()) else pair(TEXTS)
        for _ in range(draw(st.integers(0, 3)))
    ]
    renders = []
    for side in (0, 1):
        attributes = "".join(f' {name}="{value[side]}"' for name, value in zip(names, values, strict=True))
        tag = tags[side]
        inner = "".join(child[side] for child in children)
        renders.append(f"<{tag}{attributes}>" if tag == "br" else f"<{tag}{attributes}>{inner}</{tag}>")
    return renders[0], renders[1]


@settings(max_examples=400, deadline=None)
@given(two_renders(), st.sampled_from(["", "\n", " \n "]))
def test_a_panel_shaped_from_its_last_render_is_shaped_as_if_parsed_whole(renders, around):
    old, new = renders[0], around + renders[1] + around
    parsed = frames._parse(new)
    last = frames._parse(old)

    derived = frames._derive(last, new) if last is not None else None

    if derived is not None:
        assert derived == parsed
        assert frames.patch_ops(last, derived) == frames.patch_ops(last, parsed)
    elif last is not None and parsed is not None and last.structure == parsed.structure and not around:
        # Alike in structure and laid out alike: the cheap way must have been taken.
        assert last.part_nodes != parsed.part_nodes


def test_a_figure_that_changed_is_shaped_from_the_last_render_without_a_whole_parse():
    old, new = kpi("$1,200.00"), kpi("$1,284.50", text="+19%")
    last = frames._parse(old)

    derived = frames._derive(last, new)

    assert derived == frames._parse(new)
    assert derived.structure is last.structure
