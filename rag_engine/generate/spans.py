"""The spans of a text the support check reads: numbers (each with the key it is compared by: "1,000" is
"1000", "5km" is "5") and proper names ("George H. W. Bush", "PM2.5", "Bank of England"), and what a passage or
sentence holds (`Lookup`), indexed once.

`claim_spans` gives the spans of an answer worth checking (the question's own numbers and names left out),
`name_spans` the names of any text. Everything is lexical on purpose: fast, deterministic and explainable.
Not here: what the check concludes from them (`support.py`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

# A token: letters/digits, joined through inner . , ' ’ and hyphens ("U.S", "1,000", "Mary's", "Louis-Camille",
# "PM2.5"), and through the space of a space-grouped thousand ("1 000", "12 500": one to three digits, then
# exactly three).
_TOKEN = re.compile(
    r"[^\W_]+(?:(?:[.,'’\-‐]|(?<=[0-9])(?<![0-9]{4})[ \u00a0\u2009\u202f](?=[0-9]{3}(?![^\W_]|[-‐])))[^\W_]+)*"
)
# A word for name matching and word overlap: as `_TOKEN` but split at hyphens and commas.
_WORD = re.compile(r"[^\W_]+(?:[.'’][^\W_]+)*")
# A number, whole: its value (grouped thousands or plain, with decimals) and what is glued after it.
_NUMBER = re.compile(
    r"(?P<value>[0-9]{1,3}(?:[, \u00a0\u2009\u202f][0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?)"
    r"(?P<tail>[^\W\d_]*(?:['’]s)?)"
)
_GROUPING = re.compile(r"[, \u00a0\u2009\u202f]")
# Tails that belong to the number's meaning ("1970s", "20th"); any other lowercase tail is a unit ("5km").
_NUMBER_SUFFIXES = frozenset({"", "s", "'s", "’s", "st", "nd", "rd", "th"})
_MINUS = "-−"
# Small numbers are often written as words: "three weeks" and "3 weeks" say the same.
NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        """zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen
        seventeen eighteen nineteen twenty""".split()  # noqa: SIM905
    )
}
_SUBSCRIPTS = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")

# Words that are common English, not names, when they open a sentence; also the words that carry no content
# when an answer's words are matched against a sentence.
COMMON_WORDS = frozenset(
    """a an the and or but nor so yet of in on at to for from by with as into onto upon about above below after
    before during since until than then there here their theirs they them he she his her hers him we us our
    ours you your yours i me my mine it its itself this that these those which who whom whose what when where
    why how not no yes do does did done has have had having will would can could may might must shall should
    be is are was were been being also according however therefore thus hence although though while whereas
    because if unless whether both each every either neither some many most more much few several all any
    none other another such only just even still already again perhaps maybe probably possibly okay ok sure
    well first second third finally next last overall generally typically usually often sometimes given
    including note please let answer summary based sorry unfortunately additionally furthermore moreover
    instead otherwise meanwhile similarly consequently indeed certainly clearly specifically essentially
    today now currently recently later earlier one two three four five six seven eight nine ten
    approximately around nearly almost over under between among within without through across per via like
    unlike despite regarding concerning following source sources context document documents passage passages
    text i'm i've i'd i'll it's that's there's""".split()  # noqa: SIM905
)
# Capitalised words that are never a name on their own, wherever they stand.
_NEVER_NAMES = frozenset({"I", "I'm", "I’m", "I've", "I’ve", "I'd", "I’d", "I'll", "I’ll", "Yes", "No"})
# Lowercase words that may sit inside a name between capitalised ones ("Bank of England", "Leonardo da Vinci").
CONNECTORS = frozenset({"of", "de", "da", "di", "du", "del", "der", "van", "von", "la", "le"})
# Titles: they link with a period to the next word ("Dr. Smith") and are not significant in a name.
_TITLE_ABBREVIATIONS = frozenset({"st", "dr", "mr", "mrs", "ms", "prof", "mt", "sr", "jr"})
_TITLES = _TITLE_ABBREVIATIONS | frozenset(
    "sir saint president king queen prince princess lord lady pope professor senator governor mount".split()  # noqa: SIM905
)
_INITIALS = re.compile(r"[A-Z](?:\.[A-Z])*")
_POSSESSIVE = re.compile(r"['’]s$", re.IGNORECASE)
# What the checker skips back over to find whether a token opens a sentence.
_SENTENCE_OPENERS = "\"'“‘([*_#>•-"


@dataclass(frozen=True)
class Span:
    """One claim candidate of a text, a number or a name: where it is, the span as written, and the key it is
    compared by."""

    start: int
    span: str
    kind: str
    key: str


class Lookup:
    """What a passage or sentence holds, indexed once: its number keys and its words (lowercase, and as written
    for acronyms, which match case-sensitively so that "WHO" is not found in "people who")."""

    def __init__(self, text: str) -> None:
        self.numbers: set[str] = set()
        for found in _numbers(text):
            self.numbers.add(found.key)
            # An unsigned number of the answer is found in a signed one ("40 below zero" / "−40 °C").
            self.numbers.add(found.key.lstrip("-"))
        self.exact = _name_words(text)
        self.lower = {word.lower() for word in self.exact}
        # "three weeks" in a passage supports an answer's "3 weeks".
        self.numbers.update(NUMBER_WORDS[word] for word in self.lower if word in NUMBER_WORDS)

    def holds(self, found: Span) -> bool:
        if found.kind == "number":
            return found.key in self.numbers
        significant = _significant(found.span)
        held = [self.has(word) for word in significant]
        return held[-1] and 2 * sum(held) >= len(held)

    def has(self, word: str) -> bool:
        if is_acronym(word):
            return word in self.exact
        lower = word.lower()
        # A plural finds its singular and back ("Nobel Prizes" / "Nobel Prize").
        return lower in self.lower or lower.removesuffix("s") in self.lower or lower + "s" in self.lower


def claim_spans(answer: str, question: str) -> list[Span]:
    """The spans of `answer` worth checking, in answer order, once each (by kind and key): its numbers and names,
    without those the question already holds."""
    asked_numbers = {found.key for found in _numbers(question)}
    # The question is looked up like a passage: a name it already holds is the question's, not the answer's
    # (with acronyms compared exactly, so "Who signed it?" does not hold "WHO").
    asked = Lookup(question)
    candidates = [found for found in _numbers(answer) if found.key not in asked_numbers]
    candidates += [
        found for found in name_spans(answer) if not all(asked.has(word) for word in _significant(found.span))
    ]
    candidates.sort(key=lambda found: found.start)
    seen: set[tuple[str, str]] = set()
    unique: list[Span] = []
    for found in candidates:
        if (found.kind, found.key) not in seen:
            seen.add((found.kind, found.key))
            unique.append(found)
    return unique


def _numbers(text: str) -> Iterator[Span]:
    """Every number of `text` with its key: grouping removed ("1,000" → "1000"), a minus sign kept, an
    ordinal or decade suffix kept ("20th", "1970s"), a unit dropped ("5km" → "5")."""
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if not any("0" <= char <= "9" for char in token):
            continue
        # A capitalised token with digits is the name of a thing (PM2.5, CO2, COVID-19), and a lowercase one
        # that starts with a letter is a code or a unit (pm10, m3, v2): neither is a number. A lowercase
        # compound holds its numbers in its parts ("mid-1970s", "pre-2000").
        if not token[0].isdigit() and not (token[0].islower() and ("-" in token or "‐" in token)):
            continue
        if _is_list_marker(text, match.start(), match.end()) or _is_citation(text, match.start(), match.end()):
            continue
        for part in _parts(match):
            yield from _number(text, *part)


def _parts(match: re.Match[str]) -> Iterator[tuple[int, str]]:
    """The pieces of a token that may each be a number: the token itself, else its hyphen- and comma-separated
    parts ("5-10", "mid-1970s", "1970,1980")."""
    token, start = match.group(0), match.start()
    if _NUMBER.fullmatch(token):
        yield start, token
        return
    offset = 0
    for piece in re.split(r"([-‐,])", token):
        if piece and piece not in "-‐,":
            yield start + offset, piece
        offset += len(piece)


def _number(text: str, start: int, part: str) -> Iterator[Span]:
    match = _NUMBER.fullmatch(part)
    if match is None:
        return
    value = _GROUPING.sub("", match.group("value"))
    tail = match.group("tail")
    if tail.lower() in _NUMBER_SUFFIXES:
        key, span_end = value + tail.lower().replace("'", "").replace("’", ""), len(part)
    elif tail.islower():
        key, span_end = value, len(match.group("value"))
    else:
        return  # "3D", "5G": a digit-led name, not a quantity to check
    # A minus sign right before the number, not itself glued to a word or number ("−40", not "5-10").
    if start > 0 and text[start - 1] in _MINUS and (start < 2 or not text[start - 2].isalnum()):
        yield Span(start - 1, text[start - 1 : start + span_end], "number", "-" + key)
    else:
        yield Span(start, part[:span_end], "number", key)


def _is_list_marker(text: str, start: int, end: int) -> bool:
    """Numbering, not a claim: the number that opens a line as in "2. Ford" or "2) Ford"."""
    line_start = text.rfind("\n", 0, start) + 1
    return not text[line_start:start].strip() and re.match(r"[.)]\s", text[end : end + 2]) is not None


def _is_citation(text: str, start: int, end: int) -> bool:
    """A citation like "[2]": the prompt numbers its passages, and an answer citing one claims nothing by it."""
    return text[start - 1 : start] == "[" and text[end : end + 1] == "]"


def name_spans(text: str) -> Iterator[Span]:
    """Runs of capitalised words (joined by single spaces, by ". " after an initial or a title, and through
    connectors like "of"), without the common words that open a sentence."""
    tokens = list(_TOKEN.finditer(text))
    lowercase_elsewhere = {t.group(0).lower() for t in tokens if t.group(0)[0].islower()}
    run: list[re.Match[str]] = []
    for index, token in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if _continues(text, run, token, following):
            run.append(token)
        else:
            yield from _name(text, run, lowercase_elsewhere)
            run = [token] if _capitalised(token.group(0)) else []
    yield from _name(text, run, lowercase_elsewhere)


def _name(text: str, run: list[re.Match[str]], lowercase_elsewhere: set[str]) -> Iterator[Span]:
    """The name a run of capitalised tokens makes, once the words that are not part of it are dropped."""
    while run:
        word = run[0].group(0)
        opening = opens_sentence(text, run[0].start())
        # An acronym is never a common word, even when it spells one ("WHO sets ...").
        common = not is_acronym(word) and (word.lower() in COMMON_WORDS or word.lower() in lowercase_elsewhere)
        if word in _NEVER_NAMES or (opening and common) or word in CONNECTORS:
            run = run[1:]
            continue
        break
    if not run or (len(run) == 1 and len(run[0].group(0)) == 1):
        return  # a lone capital letter is a unit ("°F") or a label, not a name
    span = text[run[0].start() : run[-1].end()]
    yield Span(run[0].start(), span, "name", span.lower())


def _continues(text: str, run: list[re.Match[str]], token: re.Match[str], following: re.Match[str] | None) -> bool:
    """Whether `token` belongs to the name being collected in `run` (or starts one): a capitalised word that
    links to the run, or a connector between the run and a capitalised word."""
    if _capitalised(token.group(0)):
        return not run or _links(text, run[-1], token)
    return (
        bool(run)
        and token.group(0) in CONNECTORS
        and following is not None
        and _capitalised(following.group(0))
        and _links(text, run[-1], token)
        and _links(text, token, following)
    )


def _capitalised(token: str) -> bool:
    return token[0].isupper()


def _links(text: str, previous: re.Match[str], token: re.Match[str]) -> bool:
    """Whether `token` continues the name that `previous` is part of."""
    gap = text[previous.end() : token.start()]
    if gap in (" ", "\u00a0"):
        return True
    word = previous.group(0)
    joins_with_period = _INITIALS.fullmatch(word) is not None or word.lower() in _TITLE_ABBREVIATIONS
    return joins_with_period and re.fullmatch(r"\. ?", gap) is not None


def opens_sentence(text: str, start: int) -> bool:
    at = start
    while at > 0 and (text[at - 1] in " \t" or text[at - 1] in _SENTENCE_OPENERS):
        at -= 1
    return at == 0 or text[at - 1] in ".!?:;\n"


def _significant(name: str) -> list[str]:
    """The words of a name that identify it: three letters or more and not a title ("George H. W. Bush" →
    George, Bush); all its words when none is that long ("UN")."""
    words = [_POSSESSIVE.sub("", word).translate(_SUBSCRIPTS) for word in _WORD.findall(name)]
    significant = [w for w in words if sum(c.isalnum() for c in w) >= 3 and w.lower() not in _TITLES]
    return significant or [w for w in words if w.lower() not in _TITLES] or words


def is_acronym(word: str) -> bool:
    return word.isupper() and sum(char.isalpha() for char in word) >= 2


def _name_words(text: str) -> set[str]:
    """The words of `text` as written, each also without a possessive "'s" ("Nixon's" holds "Nixon")."""
    found: set[str] = set()
    for word in _WORD.findall(text.translate(_SUBSCRIPTS)):
        found.add(word)
        found.add(_POSSESSIVE.sub("", word))
    return found


def lower_words(text: str) -> set[str]:
    """The words of `text`, lowercase, each also without a possessive "'s"."""
    return {word.lower() for word in _name_words(text)}


def words_of(text: str) -> list[str]:
    """The words of `text` as name matching and word overlap read them (split at hyphens and commas)."""
    return _WORD.findall(text)


def bare_words(text: str) -> set[str]:
    """The words of `text`, lowercase, each without a possessive "'s"."""
    return {_POSSESSIVE.sub("", word).lower() for word in _WORD.findall(text)}
