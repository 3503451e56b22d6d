"""The Jinja2 environment of the panels a dashboard receives with every new order.

The KPI tiles and a feed row are rendered for each order of each store on screen, in
every web process, and the chart and the feed panel with every read of a store.
Django's template language spends about 67 µs on a tile and 81 µs on a feed row,
Jinja2 (which compiles a template to Python) about 27 µs and 26 µs (bench/README.md,
"Web CPU per order"). The other templates, rendered on a page load or a few times a
minute, stay in Django's language. Templates of this engine live in an app's `jinja2/`
folder, and have the filters of `live_format` that they use.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment

from opspulse.live.templatetags.live_format import figure_chars


def environment(**options: Any) -> Environment:
    env = Environment(**options)
    env.filters["figure_chars"] = figure_chars
    return env
