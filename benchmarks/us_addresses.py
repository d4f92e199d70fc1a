"""American address lines: poiflow's rule read of the common line against usaddress.

poiflow reads a line of a house number and a street ending in a USPS street type ("350
5th Ave Ste 200") by rule, and leaves every other line to ``usaddress``, the CRF parser it
used for all of them before. On the same lines (Faker's English street addresses, seeded,
and lines of the same shape with directions, ordinals, dotted types and units), this
prints how many the rule takes, how often it reads them as usaddress does (and the lines
where not), and the time per line of each.

Usage:
    .venv/bin/python benchmarks/us_addresses.py [--lines 20000] [--seed 3]
"""

from __future__ import annotations

import argparse
import random
import time

from faker import Faker

from poiflow.normalize.addresses import _tagged_us, _us_street_line

LOCALES = ("en_US", "en_CA", "en_GB", "en_AU", "en_IE", "en_NZ", "en_PH")


def lines(per_locale: int, seed: int) -> list[str]:
    out = []
    for locale in LOCALES:
        fake = Faker(locale)
        fake.seed_instance(seed)
        out += [fake.street_address() for _ in range(per_locale)]
        out += [f"{fake.building_number()} {fake.street_name()}" for _ in range(per_locale // 2)]
    rng = random.Random(seed)
    people = Faker("en_US")
    people.seed_instance(seed)
    names = [people.last_name() for _ in range(300)]
    names += ["Main", "Oak", "Park", "Broadway", "5th", "42nd", "Martin Luther King Jr", "Lake"]
    types = ["St", "St.", "Ave", "Blvd", "Pkwy", "Street", "Road", "Dr", "Ln", "Way", "Hwy", "Ct"]
    for _ in range(per_locale * 5):
        words = [str(rng.randint(1, 99999))]
        if rng.random() < 0.2:
            words.append(rng.choice(["N", "S", "E", "W", "N.", "NE", "North", "SW"]))
        words.append(rng.choice(names))
        if rng.random() < 0.3:
            words.append(rng.choice(names))
        words.append(rng.choice(types))
        if rng.random() < 0.15:
            words.append(rng.choice(["N", "S", "E", "W", "NW", "SE"]))
        if rng.random() < 0.25:
            words += [rng.choice(["Apt", "Apt.", "Suite", "Ste", "Unit", "#"]), "12B"]
        out.append(" ".join(words))
    return [" ".join(line.split()) for line in out]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=20_000, help="Faker lines per locale")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    corpus = lines(args.lines, args.seed)
    started = time.perf_counter()
    ruled = [_us_street_line(line) for line in corpus]
    rule_seconds = time.perf_counter() - started
    taken = [(line, parts) for line, parts in zip(corpus, ruled, strict=True) if parts]
    started = time.perf_counter()
    tagged = [_tagged_us(line) for line, _ in taken]
    tag_seconds = time.perf_counter() - started
    differ = [(line, p, t) for (line, p), t in zip(taken, tagged, strict=True) if p != t]
    print(f"{len(corpus):,} lines ({', '.join(LOCALES)} and composed), seed {args.seed}")
    print(f"taken by the rule: {len(taken):,} ({len(taken) / len(corpus):.1%})")
    print(f"read as usaddress reads them: {len(taken) - len(differ):,}; otherwise: {len(differ)}")
    nothing = sum(1 for _, _, t in differ if t is None or t.street is t.housenumber is None)
    print(f"  of which usaddress reads nothing of the line: {nothing}")
    print(f"{'reader':<28} {'us per line':>12} {'lines/s':>10}")
    for label, seconds, n in (
        ("poiflow rule (every line)", rule_seconds, len(corpus)),
        ("usaddress (lines taken)", tag_seconds, len(taken)),
    ):
        print(f"{label:<28} {seconds / n * 1e6:>12.1f} {n / seconds:>10,.0f}")
    for line, rule, usaddress in differ[:10]:
        shown = (
            None if usaddress is None else (usaddress.street, usaddress.housenumber, usaddress.unit)
        )
        print(f"  {line!r}: rule {(rule.street, rule.housenumber, rule.unit)}, usaddress {shown}")


if __name__ == "__main__":
    main()
