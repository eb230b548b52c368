#!/usr/bin/env python3
"""Make a development set of short-answer questions for spillway-router.

Four kinds, as in issue #12's evaluation: arithmetic, facts, word puzzles and
calendar puzzles. Facts come from data shipped in Debian packages (iso-codes:
countries, currencies, languages; tzdata: cities of time zones); every answer
is computed here, never written by hand. Output: JSON lines
{"messages": [{"role": "user", "content": ...}], "reference": ..., "category": ...}
for `spillway-router label`.

    make_devset.py --seed 1 --n 400 --out refs.jsonl
    make_devset.py --seed 3 --n 400 --mix arithmetic=1,facts=3,words=2,calendar=2

Without --mix the kinds take turns (equal shares); with it each item's kind is
drawn with the given weights (another mix of the same kinds).
"""
import argparse
import calendar
import datetime
import json
import os
import random
import sys

ISO = "/usr/share/iso-codes/json"
ZONE_TAB = "/usr/share/zoneinfo/zone.tab"
MONTHS = list(calendar.month_name)[1:]


def load_json(name, key):
    with open(os.path.join(ISO, name), encoding="utf-8") as f:
        return json.load(f)[key]


def load_sources():
    countries = [c for c in load_json("iso_3166-1.json", "3166-1")
                 if "," not in c["name"] and "(" not in c["name"]]
    by_code = {c["alpha_2"]: c["name"] for c in countries}
    currencies = [c for c in load_json("iso_4217.json", "4217") if "(" not in c["name"]]
    languages = [l for l in load_json("iso_639-2.json", "639-2")
                 if "alpha_2" in l and ";" not in l["name"] and "(" not in l["name"]]
    cities = []
    with open(ZONE_TAB, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                continue
            cols = line.rstrip("\n").split("\t")
            if len(cols) < 3 or cols[0] not in by_code:
                continue
            city = cols[2].split("/")[-1].replace("_", " ")
            cities.append((city, by_code[cols[0]]))
    words = sorted({w for c in countries for w in [c["name"]] if w.isalpha() and 4 <= len(w) <= 10}
                   | {l["name"] for l in languages if l["name"].isalpha() and 4 <= len(l["name"]) <= 10})
    return countries, currencies, languages, cities, words


def q(text, ref, cat):
    return {"messages": [{"role": "user", "content": text}], "reference": str(ref), "category": cat}


def arithmetic(rng):
    kind = rng.choice(["add", "add", "sub", "mul", "add3"])
    digits = rng.choice([1, 1, 1, 2, 2, 3])
    hi = 10 ** digits - 1
    a, b = rng.randint(1, hi), rng.randint(1, hi)
    if kind == "add":
        return q(rng.choice(["What is {a} + {b}?", "Compute {a} plus {b}.",
                             "What is the sum of {a} and {b}?"]).format(a=a, b=b), a + b, "arithmetic")
    if kind == "sub":
        a, b = max(a, b), min(a, b)
        return q(rng.choice(["What is {a} - {b}?", "What is {a} minus {b}?"]).format(a=a, b=b),
                 a - b, "arithmetic")
    if kind == "mul":
        b = rng.randint(2, 12 if digits > 1 else 9)
        return q(rng.choice(["What is {a} * {b}?", "What is {a} times {b}?",
                             "Multiply {a} by {b}."]).format(a=a, b=b), a * b, "arithmetic")
    c = rng.randint(1, hi)
    return q("What is {} + {} + {}?".format(a, b, c), a + b + c, "arithmetic")


def facts(rng, src):
    countries, currencies, languages, cities, _ = src
    kind = rng.choice(["city", "alpha2", "alpha3", "currency", "language"])
    if kind == "city":
        city, country = rng.choice(cities)
        return q(rng.choice(["In which country is the city of {c}?", "{c} is a city in which country?"])
                 .format(c=city), country, "facts")
    if kind in ("alpha2", "alpha3"):
        c = rng.choice(countries)
        n = "two" if kind == "alpha2" else "three"
        return q("What is the {}-letter ISO country code of {}?".format(n, c["name"]),
                 c["alpha_2" if kind == "alpha2" else "alpha_3"], "facts")
    if kind == "currency":
        c = rng.choice(currencies)
        return q("What is the three-letter ISO 4217 code of the currency called {}?".format(c["name"]),
                 c["alpha_3"], "facts")
    l = rng.choice(languages)
    return q("What is the two-letter ISO 639-1 code of the {} language?".format(l["name"]),
             l["alpha_2"], "facts")


def words(rng, src):
    w = rng.choice(src[4])
    kind = rng.choice(["len", "rev", "first", "first", "last", "vowels"])
    if kind == "len":
        return q("How many letters are in the word \"{}\"?".format(w), len(w), "words")
    if kind == "rev":
        return q("Spell the word \"{}\" backwards.".format(w.lower()), w.lower()[::-1], "words")
    if kind == "first":
        return q("What is the first letter of the word \"{}\"?".format(w), w[0].lower(), "words")
    if kind == "last":
        return q("What is the last letter of the word \"{}\"?".format(w), w[-1].lower(), "words")
    return q("How many vowels (a, e, i, o, u) are in the word \"{}\"?".format(w.lower()),
             sum(ch in "aeiou" for ch in w.lower()), "words")


def fmt_date(d):
    return "{} {}, {}".format(MONTHS[d.month - 1], d.day, d.year)


def calendar_q(rng):
    d = datetime.date(rng.randint(1950, 2030), 1, 1) + datetime.timedelta(days=rng.randint(0, 364))
    kind = rng.choice(["weekday", "after", "days_in", "month_after", "month_after", "leap",
                       "year_after"])
    if kind == "weekday":
        return q("What day of the week was {}?".format(fmt_date(d)), calendar.day_name[d.weekday()],
                 "calendar")
    if kind == "after":
        n = rng.choice([1, 2, 3, 7, 10, 14, 30, 100])
        return q("What date is {} days after {}?".format(n, fmt_date(d)),
                 fmt_date(d + datetime.timedelta(days=n)), "calendar")
    if kind == "days_in":
        return q("How many days are there in {} {}?".format(MONTHS[d.month - 1], d.year),
                 calendar.monthrange(d.year, d.month)[1], "calendar")
    if kind == "month_after":
        n = rng.randint(1, 11)
        return q("Which month comes {} month{} after {}?".format(n, "s" if n > 1 else "", MONTHS[d.month - 1]),
                 MONTHS[(d.month - 1 + n) % 12], "calendar")
    if kind == "year_after":
        n = rng.randint(1, 30)
        return q("Which year comes {} year{} after {}?".format(n, "s" if n > 1 else "", d.year),
                 d.year + n, "calendar")
    return q("Is {} a leap year? Answer yes or no.".format(d.year),
             "yes" if calendar.isleap(d.year) else "no", "calendar")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n", type=int, default=400, help="number of items (default 400)")
    ap.add_argument("--out", default="-", help="output file (default stdout)")
    ap.add_argument("--kinds", default="arithmetic,facts,words,calendar",
                    help="comma-separated kinds to draw from")
    ap.add_argument("--mix", default="",
                    help="kind=weight,... : draw kinds with these weights instead of in turn")
    a = ap.parse_args()
    try:
        src = load_sources()
    except OSError as e:
        print("make_devset: {} (install the iso-codes and tzdata packages)".format(e), file=sys.stderr)
        return 77
    rng = random.Random(a.seed)
    gens = {"arithmetic": lambda: arithmetic(rng), "facts": lambda: facts(rng, src),
            "words": lambda: words(rng, src), "calendar": lambda: calendar_q(rng)}
    kinds = [k for k in a.kinds.split(",") if k]
    weights = None
    if a.mix:
        try:
            pairs = [kv.split("=") for kv in a.mix.split(",") if kv]
            kinds, weights = [k for k, _ in pairs], [float(w) for _, w in pairs]
        except ValueError:
            ap.error("--mix: expected kind=weight,... (got '{}')".format(a.mix))
        if not all(w >= 0 for w in weights) or sum(weights) <= 0:
            ap.error("--mix: weights must be >= 0 with a positive sum")
    for k in kinds:
        if k not in gens:
            ap.error("unknown kind '{}' (have {})".format(k, ", ".join(gens)))
    seen, items = set(), []
    while len(items) < a.n:
        kind = (rng.choices(kinds, weights)[0] if weights
                else kinds[len(items) % len(kinds)])
        it = gens[kind]()
        key = it["messages"][0]["content"]
        if key in seen:
            continue
        seen.add(key)
        items.append(it)
    rng.shuffle(items)
    out = sys.stdout if a.out == "-" else open(a.out, "w", encoding="utf-8")
    for it in items:
        out.write(json.dumps(it, ensure_ascii=False) + "\n")
    if out is not sys.stdout:
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
