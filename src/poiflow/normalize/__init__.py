"""Normalization: pure functions of one value, and their column-wise application.

Each normalizer is idempotent and never raises on any text; property tests hold them to it.
"""

from poiflow.normalize.addresses import AddressParts, parse_address, postcode_key, street_key
from poiflow.normalize.columns import FieldProblem
from poiflow.normalize.countries import country_code
from poiflow.normalize.hours import canonical_hours
from poiflow.normalize.names import brand_key, name_key
from poiflow.normalize.phones import ParsedPhones, parse_phones, to_e164
from poiflow.normalize.records import NormalizedBatch, normalize_records, normalize_rows
from poiflow.normalize.websites import canonical_email, canonical_url, registrable_domain
from poiflow.taxonomy import Category, Taxonomy, taxonomy
from poiflow.text import clean_text, fold, repair_encoding, tokens

__all__ = [
    "AddressParts",
    "Category",
    "FieldProblem",
    "NormalizedBatch",
    "ParsedPhones",
    "Taxonomy",
    "brand_key",
    "canonical_email",
    "canonical_hours",
    "canonical_url",
    "clean_text",
    "country_code",
    "fold",
    "name_key",
    "normalize_records",
    "normalize_rows",
    "parse_address",
    "parse_phones",
    "postcode_key",
    "registrable_domain",
    "repair_encoding",
    "street_key",
    "taxonomy",
    "to_e164",
    "tokens",
]
