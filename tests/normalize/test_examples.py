"""Behaviour of each normalizer on cases a reviewer can check at a glance."""

from __future__ import annotations

import pytest

from poiflow.normalize import (
    Taxonomy,
    brand_key,
    canonical_email,
    canonical_url,
    clean_text,
    country_code,
    fold,
    name_key,
    parse_address,
    parse_phones,
    postcode_key,
    registrable_domain,
    street_key,
    taxonomy,
    to_e164,
    tokens,
)
from poiflow.normalize.names import without_own_parts
from poiflow.normalize.phones import plain_e164
from poiflow.normalize.websites import plain_urls, registrable_domains


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Hartwall Oy", "hartwall"),
        ("Oy Hartwall Ab", "hartwall"),
        ("Siemens AG", "siemens"),
        ("Bosch GmbH & Co. KG", "bosch"),
        ("Pizzeria Napoli S.p.A.", "pizzeria napoli"),
        ("Kowalski Sp. z o.o.", "kowalski"),
        ("Acme, Inc.", "acme"),
        ("The Cheesecake Factory", "cheesecake factory"),
        ("Marks & Spencer", "marks spencer"),
        ("Marks and Spencer", "marks spencer"),
        ("St. Mary's Intl Hospital", "saint marys international hospital"),
        ("AB", "ab"),  # a name that is only a legal form keeps it
        ("Café Ñandú", "cafe nandu"),
        ("Москва", "moskva"),
        ("北京饭店", "bei jing fan dian"),
        ("ＳＴＡＲＢＵＣＫＳ", "starbucks"),  # full-width letters
        # Legal forms of other countries: Polish, and Greek as its letters fold.
        ("Zięcik-Hirsch i syn s.c.", "ziecik hirsch i syn"),
        ("Ζυγούρη Ο.Ε.", "zygoyri"),
        ("Καπατσώρης Α.Β.Ε.Ε.", "kapatsoris"),
        ("Ο.Ε.", "o e"),  # only a legal form: kept
    ],
)
def test_name_key(name: str, key: str) -> None:
    assert name_key(name) == key


@pytest.mark.parametrize(
    ("name", "own", "rest"),
    [
        ("Cafe Aalto - Helsinki", ("Helsinki",), "Cafe Aalto"),
        ("Cafe Aalto (HELSINKI)", ("Helsinki",), "Cafe Aalto"),
        ("Cafe Aalto | Helsingfors", ("Helsinki", "Helsingfors"), "Cafe Aalto"),
        ("Cafe Aalto, Mannerheimintie 5", ("Mannerheimintie 5",), "Cafe Aalto"),
        ("Alko - Kamppi", ("Helsinki",), "Alko - Kamppi"),  # a branch, not its town
        ("Hotel Helsinki", ("Helsinki",), "Hotel Helsinki"),  # no separator: its name
        ("Helsinki", ("Helsinki",), "Helsinki"),
        (", Helsinki", ("Helsinki",), ", Helsinki"),  # nothing before the separator
        ("Cafe Aalto (Helsinki", ("Helsinki",), "Cafe Aalto (Helsinki"),  # unclosed
        ("Pizza - Pasta - Helsinki", ("Helsinki",), "Pizza - Pasta"),
        ("Aalto (Cafe)", ("Helsinki", "cafe"), "Aalto"),  # its own category
        ("Aalto (Bakery)", ("Helsinki", "cafe"), "Aalto (Bakery)"),
    ],
)
def test_a_name_that_repeats_where_the_place_is(name: str, own: tuple[str, ...], rest: str) -> None:
    assert without_own_parts(name, *own) == rest


def test_brand_key_joins_the_words() -> None:
    assert brand_key("Mc Donald's") == brand_key("McDonalds") == brand_key("MCDONALD’S")
    # Words that join into an abbreviation key as the abbreviation does (hypothesis found
    # "S:T" -> "st", which keyed again was "saint").
    assert brand_key("S:T") == brand_key("st") == brand_key("St") == "saint"


def test_fold_and_tokens() -> None:
    assert fold("  Ravintola   SÄVY — kaffe&mat ") == "ravintola savy kaffe mat"
    assert tokens("K-Market Kamppi") == ["k", "market", "kamppi"]


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("Ben &amp; Jerry&#39;s", "Ben & Jerry's"),  # escaped for a web page
        ("Caf&eacute; &Auml;ij&auml;", "Café Äijä"),
        ("Tom &amp;amp; Jerry", "Tom & Jerry"),  # escaped twice
        ("Pizza&nbsp;Hut", "Pizza Hut"),
        ("K&#x2d;Market", "K-Market"),
        # Not references: no ";", or a name HTML does not know, or no character.
        ("AT&T", "AT&T"),
        ("R&D &notes", "R&D &notes"),
        ("Fish &chips;", "Fish &chips;"),
        ("&#0; Bar", "&#0; Bar"),
    ],
)
def test_clean_text_reads_htmls_character_references(written: str, read: str) -> None:
    assert clean_text(written) == read


def test_clean_text_strips_invisible_characters() -> None:
    assert clean_text("\ufeffCafé\u200b Regatta\t") == "Café Regatta"
    assert clean_text("   ") is None


@pytest.mark.parametrize(
    ("value", "region", "numbers", "rejected"),
    [
        ("09 123 4567", "FI", ("+35891234567",), ()),
        ("+358 40 123 4567; 040-765 4321", "FI", ("+358401234567", "+358407654321"), ()),
        ("0049 30 1234567", None, ("+49301234567",), ()),
        ("358401234567", None, ("+358401234567",), ()),  # international, "+" missing
        ("(212) 555-0123", "US", ("+12125550123",), ()),
        # Russia dials abroad with "8 10": a Berlin number, not one after the trunk "8".
        ("8 10 49 301234", "RU", ("+49301234",), ()),
        ("8 495 123-45-67", "RU", ("+74951234567",), ()),
        ("call us!", "FI", (), ("call us!",)),
        ("+358 40 123 4567 / +358 40 123 4567", "FI", ("+358401234567",), ()),
    ],
)
def test_phones(
    value: str, region: str | None, numbers: tuple[str, ...], rejected: tuple[str, ...]
) -> None:
    parsed = parse_phones(value, region)
    assert parsed.numbers == numbers
    assert parsed.rejected == rejected


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("WWW.Example.COM", "http://www.example.com"),
        ("https://example.com:443/menu?utm_source=x&id=3#top", "https://example.com/menu?id=3"),
        ("http://example.com:8080/", "http://example.com:8080"),
        ("https://café.fi/", "https://xn--caf-dma.fi"),
        ("not a url", None),
        ("ftp://example.com", None),
        ("https://localhost", None),
        # Escaped for HTML or XML on its way: the "&" between parameters read as one.
        ("https://example.com/menu?id=3&amp;utm_source=feed", "https://example.com/menu?id=3"),
        ("https://example.com/p?a=1&amp;amp;b=2", "https://example.com/p?a=1&b=2"),
    ],
)
def test_canonical_url(value: str, url: str | None) -> None:
    assert canonical_url(value) == url


def test_plainly_written_phones_and_websites_are_read_column_wise() -> None:
    # The column-wise readers answer for the common spellings (a property test holds each
    # answer to the value-wise reader's) and leave the rest to the value-wise readers.
    phones = [" 040-123 4567 ", "+358 40 123 4567", "(212) 555-0123", "020 7946 0958"]
    regions = ["fi", None, "US", "GB"]
    others = ["09 123 4567; 040 765 4321", "call", "8 10 49 301234"]
    assert plain_e164([*phones, *others], [*regions, "FI", "FI", "RU"]) == [
        "+358401234567",
        "+358401234567",
        "+12125550123",
        "+442079460958",
        None,
        None,
        None,  # a call abroad from Russia: the parser's to read
    ]
    values = ["WWW.Example.COM/", "https://www.x.fr/?utm_source=feed#top", "x.fi/a?ref=1"]
    assert plain_urls([*values, "x.fi/?id=3", "http://x.fi:8080", "https://café.fi"]) == [
        "http://www.example.com",
        "https://www.x.fr",
        "http://x.fi/a",
        None,
        None,
        None,
    ]
    assert registrable_domains(["https://www.x.co.uk/a", "http://a.b.fi:81", "nonsense"]) == {
        "https://www.x.co.uk/a": "x.co.uk",
        "http://a.b.fi:81": "b.fi",
        "nonsense": None,
    }


def test_registrable_domain_knows_public_suffixes() -> None:
    assert registrable_domain("https://shop.example.co.uk/x") == "example.co.uk"
    assert registrable_domain("https://www.raflaamo.fi") == "raflaamo.fi"


@pytest.mark.parametrize(
    ("url", "domain"),
    [
        ("https://www.facebook.com/Kosmos.Helsinki/", "facebook.com/kosmos.helsinki"),
        ("https://fi-fi.facebook.com/kosmos/posts/123", "facebook.com/kosmos"),
        ("https://m.facebook.com/pages/Kosmos/123", "facebook.com/kosmos"),
        ("https://www.instagram.com/cafe_x", "instagram.com/cafe_x"),
        ("https://sites.google.com/view/kahvila", "google.com/kahvila"),
        ("https://www.linkedin.com/company/kosmos", "linkedin.com/kosmos"),
        ("https://www.yelp.com/biz/kosmos-helsinki", "yelp.com/kosmos-helsinki"),
        ("https://kosmos.business.site", "kosmos.business.site"),
        ("https://www.facebook.com/", None),  # the site's front page: no one's
        ("https://facebook.com/profile.php?id=123", None),
        # Delivery and booking sites: the venue ends the path, after a country and a city.
        ("https://wolt.com/fi/fin/helsinki/restaurant/kosmos", "wolt.com/kosmos"),
        ("https://wolt.com/en/fin/espoo/restaurant/sushibar", "wolt.com/sushibar"),
        ("https://www.booking.com/hotel/fi/kamp.en-gb.html?aid=1", "booking.com/kamp"),
        ("https://www.foodora.fi/restaurant/p9wz/kosmos", "foodora.fi/kosmos"),
        ("https://deliveroo.co.uk/menu/london/soho/kosmos/menu", "deliveroo.co.uk/kosmos"),
        ("https://wolt.com/", None),
    ],
)
def test_a_page_on_a_site_of_pages_is_the_businesss_own_domain(url: str, domain: str) -> None:
    """Two businesses' Facebook pages share a site and nothing else: the page is the
    domain, as a site of one's own is; the column-wise reading agrees."""
    assert registrable_domain(canonical_url(url) or url) == domain
    assert registrable_domains([url]) == {url: registrable_domain(url)}


def test_canonical_email() -> None:
    assert canonical_email("mailto:Info@Example.FI") == "Info@example.fi"
    assert canonical_email("info at example.fi") is None


@pytest.mark.parametrize(
    ("street", "country", "key"),
    [
        ("Aleksanterink.", "FI", "aleksanterinkatu"),
        ("Aleksanterinkatu", "FI", "aleksanterinkatu"),
        ("Mannerheimint.", "FI", "mannerheimintie"),
        ("W Main St.", "US", "west main street"),
        ("Fifth Avenue", "US", "5th avenue"),
        ("5th Ave", "US", "5th avenue"),
        ("Twelfth St NW", "US", "12th street northwest"),
        ("Martin Luther King Jr Blvd", "US", "martin luther king junior boulevard"),
        ("Mt. Pleasant Rd", "GB", "mount pleasant road"),
        ("Hauptstr.", "DE", "hauptstrasse"),
        ("Haupt Straße", "DE", "hauptstrasse"),
        ("Av. des Champs-Élysées", "FR", "avenue des champs elysees"),
        ("Drottningg.", "SE", "drottninggatan"),
    ],
)
def test_street_key(street: str, country: str, key: str) -> None:
    assert street_key(street, country) == key


def test_parse_address_number_first_and_last() -> None:
    finnish = parse_address("Mannerheimintie 12 B 5, 00100 Helsinki", "FI")
    assert (finnish.street, finnish.housenumber, finnish.unit) == ("Mannerheimintie", "12", "B 5")
    assert (finnish.postcode, finnish.locality) == ("00100", "Helsinki")
    us = parse_address("1600 Pennsylvania Ave NW, Washington, DC 20500")  # US told by its shape
    assert (us.housenumber, us.region, us.postcode) == ("1600", "DC", "20500")


@pytest.mark.parametrize("country", [None, "US"])
@pytest.mark.parametrize(
    "ending", ["", ", USA", ", U.S.A.", ",United States", ", united states of america", ", US "]
)
def test_an_american_line_may_end_with_its_country(ending: str, country: str | None) -> None:
    parsed = parse_address(f"1600 Amphitheatre Pkwy, Mountain View, CA 94043{ending}", country)
    assert parsed.as_dict() == {
        "street": "Amphitheatre Pkwy",
        "housenumber": "1600",
        "unit": None,
        "postcode": "94043",
        "locality": "Mountain View",
        "region": "CA",
    }


def test_only_an_american_country_ends_an_american_line() -> None:
    # "Canada" after a state and ZIP is not read as the US layout's country: generic parts.
    parsed = parse_address("1600 Amphitheatre Pkwy, Mountain View, CA 94043, Canada")
    assert parsed.region is None


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("FI", "FI"),
        ("fin", "FI"),
        ("Suomi", "FI"),
        ("Germany", "DE"),
        ("Deutschland", "DE"),
        ("United States", "US"),
        ("USA", "US"),
        ("Atlantis", None),
        ("", None),
    ],
)
def test_country_code(value: str, code: str | None) -> None:
    assert country_code(value) == code


def test_taxonomy_tree_and_extents() -> None:
    tax = taxonomy()
    assert tax.ancestors("fast_food_restaurant") == [
        "fast_food_restaurant",
        "restaurant",
        "eat_and_drink",
    ]
    assert tax.categories["airport"].extent_m > 20 * tax.categories["cafe"].extent_m
    assert tax.from_label("shop=unheard_of_value") == "shopping"


def test_taxonomy_file_reads_the_same_by_libyaml_and_by_python() -> None:
    # The taxonomy is read by libyaml for speed; its YAML must mean the same to both readers.
    from importlib import resources

    import yaml

    assert hasattr(yaml, "CSafeLoader"), "PyYAML without libyaml: the taxonomy loads slowly"
    text = resources.files("poiflow").joinpath("data/categories.yaml").read_text("utf-8")
    fast = yaml.load(text, Loader=yaml.CSafeLoader)
    assert fast == yaml.load(text, Loader=yaml.SafeLoader)
    assert set(taxonomy().categories) == set(fast)


def test_a_category_id_names_its_category_even_where_another_lists_it_as_a_term() -> None:
    # The shipped file lists "attraction" among arts_and_entertainment's terms; the id wins,
    # whichever comes first, and a parent's own terms still name the parent.
    tax = taxonomy()
    assert [c for c in tax.categories if tax.from_label(c) != c] == []
    assert tax.from_label("attraction") == "attraction"
    assert tax.from_label("Entertainment") == "arts_and_entertainment"
    parent_first = Taxonomy(
        {
            "culture": {"terms": ["museum", "arts"]},
            "museum": {"parent": "culture"},
        }
    )
    assert parent_first.from_label("museum") == "museum"
    assert parent_first.from_label("Arts") == "culture"


@pytest.mark.parametrize(
    ("name", "category"),
    [
        # Real Helsinki names the name check flagged: a longer phrase names them rightly.
        ("Q-Park Erottaja", "parking"),
        ("Stockmann Q-park", "parking"),
        ("OPI Nail Bar", "beauty_salon"),
        ("Western Union", "bank"),
        # and the single words still name what they did
        ("Kaivopuisto Park", "park"),
        ("Bar Nails", "bar"),
    ],
)
def test_a_name_is_read_by_its_longest_phrase(name: str, category: str) -> None:
    assert taxonomy().from_text(name) == category


@pytest.mark.parametrize(
    ("value", "region", "number"),
    [
        ("401234567.0", "FI", "+358401234567"),  # pandas: a phone column read as floats
        ("0401234567.0", "FI", "+358401234567"),
        ("+358401234567.0", None, "+358401234567"),
        ("4.01234567E8", "FI", "+358401234567"),  # a spreadsheet's scientific notation
        ("3.58401234567E+11", None, "+358401234567"),
        ("3.58401E+11", None, None),  # its last digits lost: no number to tell
        ("01.23.45.67.80", "FR", "+33123456780"),  # dots that group digits stay so
    ],
)
def test_a_phone_a_table_wrote_as_a_float_is_its_digits(
    value: str, region: str | None, number: str | None
) -> None:
    assert to_e164(value, region) == number
    assert parse_phones(value, region).numbers == ((number,) if number else ())


@pytest.mark.parametrize(
    ("postcode", "country", "key"),
    [
        ("sw1a 1aa", "GB", "SW1A1AA"),
        ("00170", "FI", "00170"),
        ("170", "FI", "00170"),  # a spreadsheet read it as a number
        ("1067.0", "DE", "01067"),  # ... and wrote it as one
        ("FI-00170", "FI", "00170"),  # the country's letters before it
        ("D-1067", "DE", "01067"),
        ("CH-8001", None, "8001"),
        ("02134-1234", "US", "02134"),  # ZIP+4: its ZIP
        ("00-950", "PL", "00-950"),
        ("170", None, "170"),  # no country, no length to pad to
    ],
)
def test_postcode_keys(postcode: str, country: str | None, key: str) -> None:
    assert postcode_key(postcode, country) == key
