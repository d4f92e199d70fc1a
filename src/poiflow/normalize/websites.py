"""Websites to one canonical URL and their registrable domain; emails to a canonical form."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit

from publicsuffixlist import PublicSuffixList

from poiflow.text import ASCII_ONLY, ASCII_WHITESPACE, unescape_references

__all__ = [
    "canonical_email",
    "canonical_url",
    "plain_urls",
    "registrable_domain",
    "registrable_domains",
]

_PSL = PublicSuffixList()
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
# Two or more dot-separated labels of 1-63 letters, digits or inner hyphens.
_HOST = re.compile(r"^(?:(?!-)[a-z0-9-]{1,63}(?<!-)\.)+(?!-)[a-z0-9-]{1,63}(?<!-)$")
_SPACE = re.compile(r"\s")
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
# Query parameters that track a click, not identify a page.
_TRACKING = re.compile(r"^(utm_[a-z]+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|_ga|ref|yclid)$")
_EMAIL = re.compile(r"^[^@\s]+@([^@\s]+\.[^@\s]+)$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# What most feeds write: an optional http(s) scheme, a plain ASCII host, an optional path of
# URL-safe characters, an optional fragment; no port, user, query or escapes to interpret.
_SIMPLE = re.compile(
    r"(?:(?P<scheme>https?)://)?(?P<host>[a-z0-9-]+(?:\.[a-z0-9-]+)+)\.?"
    r"(?P<path>/[a-z0-9\-._~/]*)?(?:#\S*)?",
    re.IGNORECASE,
)


@lru_cache(maxsize=1 << 18)
def canonical_url(value: str) -> str | None:
    """The canonical form of a website, or ``None`` if it is not a web address.

    Adds a missing scheme, lower-cases scheme and host (internationalized hosts become
    punycode), drops default ports, fragments, tracking parameters and a bare trailing
    "/". Idempotent.

    >>> canonical_url("WWW.Example.COM:80/?utm_source=x#top")
    'http://www.example.com'
    >>> canonical_url("https://example.com/menu?lang=fi&amp;utm_medium=feed")
    'https://example.com/menu?lang=fi'
    """
    text = unescape_references(value.strip())  # a feed escaped for HTML or XML: "&amp;"
    simple = _SIMPLE.fullmatch(text)
    return _simple_url(simple) if simple is not None else _parsed_url(text)


def _parsed_url(text: str) -> str | None:
    """``canonical_url`` of any stripped value, read by the URL parser."""
    if not text or _SPACE.search(text):
        return None
    if not _SCHEME.match(text):
        text = "http://" + text.lstrip("/")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        return None
    host = _host(parts.hostname or "")
    if host is None:
        return None
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    query = ""
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = urlencode([(k, v) for k, v in pairs if not _TRACKING.match(k)])
    path = parts.path if parts.path not in ("", "/") else ""
    return f"{scheme}://{netloc}{path}{'?' + query if query else ''}"


def _simple_url(match: re.Match[str]) -> str | None:
    """``canonical_url`` of a value ``_SIMPLE`` matched, without the URL parser."""
    host = _host(match["host"])
    if host is None:
        return None
    scheme = (match["scheme"] or "http").lower()
    path = match["path"] or ""
    return f"{scheme}://{host}{path if path != '/' else ''}"


def _host(hostname: str) -> str | None:
    """A lower-case ASCII host name with a dot, or ``None``."""
    host = hostname.rstrip(".").lower()
    if _IPV4.match(host):
        return host if all(int(octet) <= 255 for octet in host.split(".")) else None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if not _HOST.match(host) or host.rpartition(".")[2].isdigit():
        return None
    return host


# Sites where a business has a page, not a site of its own (a social network, a page
# builder, a review site): two businesses there share the domain and nothing else, so a
# page's domain is the site and the first segment of its path ("facebook.com/kosmos"),
# and the front page has none. A host under one of these with labels of its own is the
# business's ("kosmos.business.site").
_PAGE_SITES: Final = frozenset(
    {
        "facebook.com", "fb.com", "instagram.com", "twitter.com", "x.com", "linkedin.com",
        "tiktok.com", "youtube.com", "pinterest.com", "threads.net", "vk.com", "ok.ru",
        "t.me", "linktr.ee", "google.com", "goo.gl", "business.site", "yelp.com",
        "foursquare.com", "tripadvisor.com", "tripadvisor.fi", "tripadvisor.co.uk",
        "tripadvisor.de", "tripadvisor.se",
    }
)  # fmt: skip
# Sites of delivery and booking whose paths name a country, a city and a kind of place
# before the venue: its page is the last segment ("wolt.com/fi/fin/helsinki/restaurant/
# kosmos", "booking.com/hotel/fi/kamp.fi.html", "deliveroo.co.uk/menu/london/soho/kosmos").
_VENUE_SITES: Final = frozenset(
    {
        "wolt.com", "foodora.fi", "foodora.se", "foodora.no", "foodora.at", "foodora.cz",
        "foodpanda.com", "ubereats.com", "deliveroo.co.uk", "deliveroo.fr", "deliveroo.it",
        "deliveroo.be", "deliveroo.nl", "deliveroo.ie", "doordash.com", "grubhub.com",
        "just-eat.co.uk", "just-eat.dk", "just-eat.es", "just-eat.ie", "lieferando.de",
        "thuisbezorgd.nl", "glovoapp.com", "booking.com", "hotels.com", "airbnb.com",
        "opentable.com", "thefork.com", "resy.com",
    }
)  # fmt: skip
_PATH_SITES: Final = _PAGE_SITES | _VENUE_SITES  # whose pages are told apart by path
# A venue page's last segments that name a tab of it, not the venue ("/kosmos/menu").
_VENUE_TABS: Final = frozenset({"menu", "reviews", "info", "order", "delivery", "photos"})
# Path segments before the one that names the page: a language, and the sites' own words
# ("facebook.com/pages/kosmos", "linkedin.com/company/kosmos", "yelp.com/biz/kosmos").
_NOT_THE_PAGE: Final = re.compile(
    r"^(?:[a-z]{2}(?:[-_][a-z]{2})?|pages|pg|people|groups|profile\.php|p|l|v|s|a|c|in|"
    r"view|site|sites|maps|place|channel|user|company|biz|share)$"
)


@lru_cache(maxsize=1 << 18)
def registrable_domain(url: str) -> str | None:
    """The registrable domain of a canonical URL ("shop.example.co.uk" -> "example.co.uk"),
    and of a business's page on a site of pages, that site and the page's first segment
    ("facebook.com/kosmos"; the site's front page has none).

    >>> registrable_domain("https://www.raflaamo.fi/fi/helsinki")
    'raflaamo.fi'
    >>> registrable_domain("https://www.facebook.com/Kosmos.Helsinki/")
    'facebook.com/kosmos.helsinki'
    """
    _, sep, rest = url.partition("://")
    netloc = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0] if sep else ""
    if netloc and netloc.isascii() and not any(c in netloc for c in "@[]:%\\"):
        host: str | None = netloc.rstrip(".").lower()  # what urlsplit would find, quicker
    else:
        host = urlsplit(url).hostname
    domain = _domain_of_host(host) if host else None
    if domain in _PAGE_SITES:
        return _page_of(url, host, domain)
    return _venue_of(url, domain) if domain in _VENUE_SITES else domain


def _page_of(url: str, host: str | None, domain: str | None) -> str | None:
    """The domain of a URL on a site of pages (``_PAGE_SITES``): its own host where it has
    labels of its own, else the site and the first segment of its path that names one."""
    if host is None or domain is None:
        return None
    own = host.removeprefix("www.").removeprefix("m.")
    if own != domain and domain == "business.site":
        return own
    path = urlsplit(url).path.lower()
    page = next((s for s in path.split("/") if s and not _NOT_THE_PAGE.match(s)), None)
    return f"{domain}/{page}" if page else None


def _venue_of(url: str, domain: str) -> str | None:
    """The domain of a URL on a site of delivery or booking (``_VENUE_SITES``): the site
    and the venue its path ends with, without a page's suffix ("kamp.fi.html": "kamp");
    the site's front page has none."""
    segments = [s for s in urlsplit(url).path.lower().split("/") if s]
    while segments and segments[-1] in _VENUE_TABS:
        segments.pop()
    if not segments:
        return None
    venue = segments[-1].removesuffix(".html").removesuffix(".htm")
    venue = venue.rsplit(".", 1)[0] if "." in venue else venue  # "kamp.fi": a language
    return f"{domain}/{venue}" if venue else None


@lru_cache(maxsize=1 << 16)
def _domain_of_host(host: str) -> str | None:
    if _IPV4.match(host):
        return host
    domain = _PSL.privatesuffix(host)
    return str(domain) if domain else None


# Column-wise reading (``plain_urls``) of the values ``_SIMPLE`` reads, and of those with
# a query of tracking parameters only (which ``_parsed_url`` drops), in ASCII only: the
# patterns below are RE2 syntax, whose classes differ from Python's beyond ASCII.
_LABEL: Final = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_TRACKING_KEY: Final = "(?-i:utm_[a-z]+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|_ga|ref|yclid)"
_QUERY_VALUE: Final = "[!\"$%'-~]*"  # printable ASCII but "#", "&" and space
_PLAIN_URL: Final = (
    r"(?i)^(?:(?P<scheme>https?)://)?(?P<host>[a-z0-9-]+(?:\.[a-z0-9-]+)+)\.?"
    r"(?P<path>/[a-z0-9\-._~/]*)?"
    rf"(?P<query>\?{_TRACKING_KEY}={_QUERY_VALUE}(?:&{_TRACKING_KEY}={_QUERY_VALUE})*)?"
    r"(?:#[!-~]*)?$"
)
_PLAIN_HOST: Final = rf"^(?:{_LABEL}\.)+{_LABEL}$"


def plain_urls(values: Sequence[str]) -> list[str | None]:
    """``canonical_url`` of the values most feeds write, read column-wise.

    Read one at a time, a website costs some 9 µs of Python. Most values are an optional
    http(s) scheme, a plain ASCII host, a plain path, maybe tracking parameters and a
    fragment: those are read here by whole-column string operations (polars) to what
    ``canonical_url`` gives them (a property test holds them to it).

    Returns:
        For each value, its canonical URL where it is written so plainly; None for every
        other value, which ``canonical_url`` must read (it may still be a web address).
    """
    import polars as pl

    host, path = pl.col("host"), pl.col("path").fill_null("")
    url = (
        pl.DataFrame({"value": values}, schema={"value": pl.String})
        .with_columns(
            pl.col("value")
            .str.strip_chars(ASCII_WHITESPACE)
            .str.extract_groups(_PLAIN_URL)
            .alias("url")
        )
        .unnest("url")
        .with_columns(host.str.to_lowercase(), pl.col("scheme").str.to_lowercase())
        .select(
            pl.when(
                pl.col("value").str.contains(ASCII_ONLY)
                & host.str.contains(_PLAIN_HOST)
                & ~host.str.contains(r"\.[0-9]+$")  # a TLD of digits, or an IPv4 address
            ).then(
                pl.concat_str(
                    pl.col("scheme").fill_null("http"),
                    pl.lit("://"),
                    host,
                    pl.when(path == "/").then(pl.lit("")).otherwise(path),
                )
            )
        )
    )
    return url.to_series().to_list()


def registrable_domains(urls: Sequence[str]) -> dict[str, str | None]:
    """``registrable_domain`` of each of these URLs, by URL: the hosts are read column-wise,
    and each distinct host is looked up in the public suffix list once."""
    import polars as pl

    frame = (
        pl.DataFrame({"url": urls}, schema={"url": pl.String})
        .unique()
        .with_columns(pl.col("url").str.extract(r"(?s)^.*?://([^/?#]*)").alias("netloc"))
    )
    plain = pl.col("netloc").str.contains(ASCII_ONLY) & ~pl.col("netloc").str.contains(
        r"[@\[\]:%\\]"
    )
    frame = frame.with_columns(
        pl.when(plain)
        .then(pl.col("netloc").str.strip_chars_end(".").str.to_lowercase())
        .alias("host")
    )
    found = {}
    for url, host in frame.select("url", "host").iter_rows():
        domain = _domain_of_host(host) if host else registrable_domain(url)
        found[url] = registrable_domain(url) if domain in _PATH_SITES else domain
    return found


@lru_cache(maxsize=1 << 16)
def canonical_email(value: str) -> str | None:
    """An email address with its domain lower-cased, or ``None`` if it is not one.

    >>> canonical_email(" Info@Example.FI ")
    'Info@example.fi'
    """
    text = unescape_references(value.strip()).removeprefix("mailto:")
    match = _EMAIL.match(text)
    if match is None:
        return None
    domain = _host(match.group(1))
    if domain is None:
        return None
    return f"{text[: match.start(1)]}{domain}"
