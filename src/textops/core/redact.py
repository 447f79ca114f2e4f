"""Personal data out of served texts before they reach disk (serve.redact): e-mail addresses, phone numbers,
payment card numbers, IBANs, IP addresses and the credentials of URLs become typed placeholders (`<EMAIL>`,
`<PHONE>`, `<CARD>`, `<IBAN>`, `<IP>`, `<CREDENTIALS>`). Pure: patterns with validators (Luhn for cards, ISO 7064
mod 97 for IBANs, the standard library's parser for IPv6), the approach of Presidio's pattern recognizers, which
the project cannot install. Everything outside a redacted span is kept as it was, character for character.

What it does not find (names, postal addresses, bare digit runs such as `5551234567`, numbers written in words) is
said in docs/privacy.md: this lowers the risk of a log; it does not make a log anonymous.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

KINDS = ("CREDENTIALS", "EMAIL", "IBAN", "CARD", "IP", "PHONE")  # in this order: a span found first wins


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class Recognizer:
    kind: str
    pattern: re.Pattern
    valid: Callable[[str], bool] = lambda _: True
    group: int = 0  # the part of a match that is redacted (a URL keeps its scheme and host)


def digits(text: str) -> str:
    return re.sub(r"[^0-9]", "", text)


def luhn(number: str) -> bool:
    """The Luhn checksum of a card number (its digits only)."""
    total = 0
    for i, d in enumerate(reversed(number)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def valid_card(text: str) -> bool:
    number = digits(text)
    return 13 <= len(number) <= 19 and len(set(number)) > 1 and luhn(number)


def valid_iban(text: str) -> bool:
    """ISO 13616: 15 to 34 characters whose rearranged number (letters as 10..35) is 1 modulo 97."""
    iban = re.sub(r"\s", "", text).upper()
    if not 15 <= len(iban) <= 34:
        return False
    number = "".join(str(int(c, 36)) for c in iban[4:] + iban[:4])
    return int(number) % 97 == 1


def valid_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return text.count(":") >= 2


DATE = re.compile(r"[0-9]{1,2}[./-][0-9]{1,2}[./-][0-9]{2,4}|[0-9]{4}[./-][0-9]{1,2}[./-][0-9]{1,2}")


def valid_phone(text: str) -> bool:
    """7 to 15 digits (E.164's longest; an international `00` prefix not counted), and not a date."""
    number = digits(text)
    if text.startswith("00"):
        number = number[2:]
    return 7 <= len(number) <= 15 and not DATE.fullmatch(text.strip())


OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
SEP = r"[ ./-]"  # what people put between the digit groups of a phone number
RECOGNIZERS = (
    # scheme://user:password@host: the user and password go, the scheme and host stay
    Recognizer("CREDENTIALS", re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{0,31}://([^\s/?#@]+)@(?=[^\s/?#@])"), group=1),
    Recognizer(
        "EMAIL",
        re.compile(r"(?<![\w.+'%-])[\w.+'%-]+@(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_]{2,}(?![\w-])"),
    ),
    Recognizer(
        "IBAN",
        re.compile(r"(?<![\w])[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,3})?(?![\w])"),
        valid_iban,
    ),
    Recognizer("CARD", re.compile(r"(?<![\w+.,-])[0-9](?:[ -]?[0-9]){12,18}(?![\w.,-]?[0-9])"), valid_card),
    Recognizer(
        "IP",
        re.compile(
            r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?::[0-9]{1,3}(?:\.[0-9]{1,3}){3})?(?![\w:]|\.[0-9])"
        ),
        valid_ipv6,
    ),
    Recognizer(
        "IP",
        re.compile(rf"(?<![\w.])(?:{OCTET}\.){{3}}{OCTET}(?![\w]|\.[0-9])"),
    ),
    # international: +44 20 7946 0958, +1 (212) 555-0100, 0049 30 1234567
    Recognizer(
        "PHONE",
        re.compile(rf"(?<![\w+])(?:\+|\b00)[1-9](?:{SEP}?(?:\([0-9]{{1,4}}\)|[0-9])){{5,18}}(?![\w])"),
        valid_phone,
    ),
    # national, with the trunk 0: 030 1234567, 06 12 34 56 78, (030) 123 45 67, 0151-12345678
    Recognizer(
        "PHONE",
        re.compile(
            rf"(?<![\w+.,/-])(?:\(0[0-9]{{1,4}}\) ?|0[0-9]{{1,4}})(?:{SEP}?[0-9]{{2,}}){{1,5}}(?![\w]|[.,][0-9])"
        ),
        valid_phone,
    ),
    # North American: (212) 555-0100, 212-555-0100, 212.555.0100, 555-0100
    Recognizer(
        "PHONE",
        re.compile(
            r"(?<![\w+.,/-])(?:(?:\([0-9]{3}\) ?|[0-9]{3}([ .-]))[0-9]{3}(?(1)\1|[ .-])[0-9]{4}|[0-9]{3}-[0-9]{4})"
            r"(?![\w]|[.,-][0-9])"
        ),
        valid_phone,
    ),
)


def find(text: str) -> list[Span]:
    """The spans of TEXT to redact, left to right, none overlapping (the kinds earlier in KINDS win)."""
    taken: list[Span] = []
    for recognizer in RECOGNIZERS:
        for match in recognizer.pattern.finditer(text):
            start, end = match.span(recognizer.group)
            if not recognizer.valid(match.group(recognizer.group)):
                continue
            if any(start < s.end and s.start < end for s in taken):
                continue
            taken.append(Span(start, end, recognizer.kind))
    return sorted(taken, key=lambda s: s.start)


def redact(text: str) -> str:
    """TEXT with each span `find` names replaced by its placeholder (`<EMAIL>`...), the rest untouched."""
    spans = find(text)
    if not spans:
        return text
    out, at = [], 0
    for span in spans:
        out += [text[at : span.start], f"<{span.kind}>"]
        at = span.end
    out.append(text[at:])
    return "".join(out)
