"""The answer's type against the question's: a question that asks for minutes is not answered by "10 psi".

A small model that cannot find the asked fact in its context tends to copy the nearest number it can see, with
that number's own unit: a pressure for a time, a duration for a cost, a year for a count. Every number of such
an answer is "in the sources", so the support check alone calls it grounded. Here the question's expected
kind of answer (a duration, a length, a temperature, an amount of money, a mass, a speed, a percentage, a year,
a date, a count) is read from its wording, each number of the answer is classified by the unit written next to
it, and the answer is a *mismatch* when it has numbers and none of them can be of the asked kind.

The rule is one-sided on purpose: a number without a unit ("20") fits every kind, and a question whose kind is
not recognised is never a mismatch. Only positive evidence of another kind (a unit of another family, a bare
year answering "how many") flags an answer, so a terse right answer is never refused for its terseness.

Not here: the lookup of claims in the sources (`support.py`), the verdict (`verification.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Unit words by family, lowercase, as they follow a number ("12 minutes", "5 km", "95 °C").
_UNITS: dict[str, frozenset[str]] = {
    "duration": _words(
        """second seconds sec secs s minute minutes min mins hour hours hr hrs h day days week weeks month
        months year years yr yrs decade decades century centuries millennia millennium"""
    ),
    "length": _words(
        """km kilometre kilometres kilometer kilometers m metre metres meter meters cm centimetre centimetres
        mm millimetre millimetres µm micrometre micrometres micron microns nm mile miles mi ft foot feet inch
        inches yard yards yd"""
    ),
    "temperature": _words("°c °f °k ° degrees degree celsius fahrenheit kelvin c f"),
    "money": _words(
        """dollars dollar usd francs franc pounds pound sterling euros euro eur yen marks guilders florins
        rupees lire ducats shillings pence cents"""
    ),
    "mass": _words(
        "kg kilogram kilograms g gram grams mg milligram milligrams tonnes tonne tons ton lb lbs ounce ounces oz"
    ),
    "pressure": _words("psi kpa pa bar atm mmhg hpa"),
    "speed": _words("mph km/h kph knots knot m/s"),
    "percent": _words("% percent"),
    "concentration": _words("µg/m³ µg/m3 ppm ppb mg/dl mmol/l pci/l bq/m³"),
}
_MONTHS = _words(
    """january february march april may june july august september october november december jan feb mar
    apr jun jul aug sep sept oct nov dec"""
)

# What the question's wording asks for. Checked in order; the first match decides.
_ASKED: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("percent", re.compile(r"\bwhat (percentage|percent|share|proportion|fraction)\b|\bhow many percent\b", re.I)),
    (
        "money",
        re.compile(
            r"\b(how much (did|does|do|would|will)\b.*\b(cost|pay|paid|spend|spent|charge)\b"
            r"|\b(cost|price)\b.*\?$|\bhow much money\b)",
            re.I,
        ),
    ),
    (
        "temperature",
        re.compile(
            r"\b(what|which|at what|to what) (\w+ )?temperature\b|\bhow (hot|cold)\b"
            r"|\bin (degrees|°[cf]\b|celsius|fahrenheit)",
            re.I,
        ),
    ),
    (
        "length",
        re.compile(
            r"\bhow (far|tall|deep|wide)\b|\bin (kilometres|kilometers|km|miles|metres|meters"
            r"|feet|inches|centimetres|centimeters)\b|\bhow many (kilometres|kilometers|km|miles"
            r"|metres|meters|feet|inches|centimetres|centimeters|yards)\b",
            re.I,
        ),
    ),
    (
        "mass",
        re.compile(
            r"\bhow heavy\b|\bhow much (does|did) \w+( \w+)? weigh\b|\bin (kilograms|kg|tonnes|pounds"
            r"|grams)\b",
            re.I,
        ),
    ),
    ("speed", re.compile(r"\bhow fast\b|\bwhat speed\b|\bin (mph|km/h)\b", re.I)),
    (
        "duration",
        re.compile(
            r"\bhow many (seconds|minutes|hours|days|weeks|months|years|decades|centuries)\b"
            r"|\bfor how long\b|\bin (seconds|minutes|hours|days)\b",
            re.I,
        ),
    ),
    ("year", re.compile(r"\b(what|which|in what|in which) year\b", re.I)),
    ("date", re.compile(r"\b(on )?what (date|day)\b", re.I)),
    ("count", re.compile(r"\bhow many\b", re.I)),
)
# Words after a number that make it a count of things, not a year ("1,500 workers", "18 sailors").
_NUMBER = re.compile(
    r"(?P<sign>[$£€¥₹])?\s?(?P<value>\d{1,3}(?:[,\u00a0\u202f ]\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?:\s?(?P<unit>°\s?[CFK]\b|%|[^\W\d_][\w/³]*))?"
)
_KIND_WORDS = {
    "percent": "a percentage",
    "money": "an amount of money",
    "temperature": "a temperature",
    "length": "a length or distance",
    "mass": "a weight",
    "speed": "a speed",
    "duration": "a duration",
    "year": "a year",
    "date": "a date",
    "count": "a count",
}


@dataclass(frozen=True)
class Mismatch:
    """The kind the question asks for, and what the answer's numbers are instead."""

    asked: str
    found: tuple[str, ...]

    def describe(self) -> str:
        return f"{_KIND_WORDS[self.asked]} (the answer gives {', '.join(_KIND_WORDS.get(f, f) for f in self.found)})"


def asked_kind(question: str) -> str | None:
    """What kind of answer the question's wording asks for, or None when it does not say."""
    for kind, pattern in _ASKED:
        if pattern.search(question):
            return kind
    return None


def number_kinds(answer: str) -> list[str]:
    """The kind of each number of the answer, by its unit: a family of `_UNITS`, "date" (a month next to it),
    "year" (a bare four-digit number from 1000 to 2100), "money" (a currency sign), or "bare" (fits anything)."""
    kinds = []
    for match in _NUMBER.finditer(answer):
        start = match.start("sign") if match.group("sign") else match.start("value")
        if start > 0 and (answer[start - 1].isalnum() or answer[start - 1] in "_-") and not match.group("sign"):
            continue  # a digit inside a word or code ("PM2.5", "CO2", "B-52")
        kinds.append(_kind(answer, match))
    return kinds


def _kind(answer: str, match: re.Match[str]) -> str:
    if match.group("sign"):
        return "money"
    value = match.group("value")
    unit = (match.group("unit") or "").lower().replace(" ", "")
    glued = answer[match.end("value") : match.end("value") + 1] not in (" ", "\u00a0", "")
    before = answer[max(0, match.start() - 12) : match.start()].lower().split()
    if unit in _MONTHS or (before and before[-1].rstrip(".") in _MONTHS):
        return "date"
    if re.fullmatch(r"1\d{3}|20\d{2}|2100", value) and (not unit or (glued and unit in ("s", "'s", "’s"))):
        return "year"  # "1967", and the decade "1850s"
    if glued and unit in ("s", "'s", "’s"):
        return "bare"  # "in their 20s"
    for family, words in _UNITS.items():
        if unit in words or unit.rstrip(".,") in words:
            return family
    if unit.startswith("°"):
        return "temperature"
    return "bare"


def _fits(asked: str, kind: str) -> bool:
    if kind == "bare" or kind == asked:
        return True
    if asked == "count":
        # "how many" is answered by a number of things; a year or a date is not a count.
        return kind not in ("year", "date")
    if asked == "duration":
        # "how many years apart" is often answered with the two years themselves.
        return kind in ("year", "date")
    if asked == "year":
        return kind == "date"
    if asked == "date":
        return kind == "year"
    return False


def answer_type_mismatch(question: str, answer: str) -> Mismatch | None:
    """A `Mismatch` when the question asks for a kind of answer and none of the answer's numbers can be one;
    None when they fit, when the answer has no number, or when the question's kind is not recognised."""
    asked = asked_kind(question)
    if asked is None:
        return None
    kinds = number_kinds(answer)
    if not kinds or any(_fits(asked, kind) for kind in kinds):
        return None
    return Mismatch(asked, tuple(dict.fromkeys(kinds)))
