"""The web pages people use: the map page of ``poiflow serve`` (search, results on a map,
a place with its sources) and the labelling page (two records side by side on a map,
answered with the keyboard), served by ``poiflow serve`` and by ``poiflow label --web``.

Each page is one HTML document with its scripts and styles inlined (Leaflet is vendored
with the quality report's assets): it works offline, with no CDN. Map tiles come from
OpenStreetMap when the browser is online; without them the places are still drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

__all__ = ["label_page", "map_page"]

_ASSETS: Final = Path(__file__).resolve().parents[1] / "quality" / "assets"


def _asset(name: str) -> str:
    return (_ASSETS / name).read_text("utf-8")


def _document(title: str, styles: list[str], body: str, scripts: list[str], mode: str) -> str:
    css = "".join(f"<style>{_asset(name)}</style>" for name in styles)
    js = "".join(f"<script>{_asset(name)}</script>" for name in scripts)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">{css}</head>'
        f'<body data-mode="{mode}">{body}{js}</body></html>'
    )


def map_page() -> str:
    """The map page: a search box, the results on a map, the place opened with its sources."""
    body = (
        '<header><b>poiflow</b><input id="q" type="search" placeholder="Search places '
        '(name, brand, category, street)" autocomplete="off" aria-label="search">'
        '<label><input id="near" type="checkbox"> near the map\'s centre</label>'
        '<label><input id="open" type="checkbox"> open now</label>'
        '<span class="keys"><kbd>/</kbd> search <kbd>&uarr;</kbd><kbd>&darr;</kbd> move '
        "<kbd>Enter</kbd> open</span>"
        '<a href="/review">review pairs</a> <a href="/docs">API</a></header>'
        '<ol id="results"></ol><div id="map"></div>'
        '<aside id="details"><p>Search, or click a place on the map.</p></aside>'
    )
    return _document(
        "poiflow: golden places", ["leaflet.css", "map.css"], body, ["leaflet.js", "map.js"], "map"
    )


def label_page(*, served: bool) -> str:
    """The labelling page. ``served``: inside ``poiflow serve`` (questions from
    ``/review/question/N``, answers to ``POST /labels`` with the write token the page asks
    for); else the page of ``poiflow label --web``."""
    token = (
        '<label class="token">write token <input id="token" type="password" '
        'autocomplete="off"></label>'
        if served
        else ""
    )
    body = (
        '<header><b>Are these the same place?</b> <span id="progress"></span>'
        '<span class="keys"><kbd>y</kbd> same place <kbd>n</kbd> different <kbd>s</kbd> '
        f"unsure <kbd>q</kbd> stop</span>{token}</header>"
        '<p id="why"></p><div id="pair"><table id="left"></table><table id="right"></table>'
        '</div><div id="map"></div>'
    )
    return _document(
        "poiflow label",
        ["leaflet.css", "label.css"],
        body,
        ["leaflet.js", "label.js"],
        "served" if served else "local",
    )
