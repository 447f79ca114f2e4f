"""The redactor of served texts (serve.redact): each kind found and replaced by its placeholder, the look-alikes
people write every day (years, prices, dates, versions, order numbers) left alone, and the rest of a text, in any
script, kept character for character."""

from __future__ import annotations

import pytest

from textops.core.redact import find, luhn, redact, valid_iban


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail jane.doe@example.com now", "mail <EMAIL> now"),
        ("Jane.O'Neil+news@mail.example.co.uk.", "<EMAIL>."),
        ("(a_b-c%d@sub-domain.example.org)", "(<EMAIL>)"),
        ("jürgen.müller@bücher.de schrieb", "<EMAIL> schrieb"),  # international addresses too
        ("a@b.c, x@localhost, @handle, user@", "a@b.c, x@localhost, @handle, user@"),  # no domain, no address
    ],
)
def test_e_mail_addresses(text: str, expected: str):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "phone",
    [
        "+44 20 7946 0958",
        "+1 (212) 555-0100",
        "+49-30-1234567",
        "+33 6 12 34 56 78",
        "0049 30 1234567",
        "030 1234567",
        "(030) 123 45 67",
        "0151-12345678",
        "06 12 34 56 78",
        "06.12.34.56.78",
        "07700900123",
        "(212) 555-0100",
        "212-555-0100",
        "212.555.0100",
        "555-0100",
    ],
)
def test_phone_numbers_in_international_and_national_forms(phone: str):
    assert redact(f"call {phone}, thanks") == "call <PHONE>, thanks"


@pytest.mark.parametrize(
    "text",
    [
        "In 2024 it cost $1,234.56 (or 1 234,56 €, 1.234.567 in all)",
        "born 05.12.1984, due 2024-01-15, sent 12/05/2024",
        "order 12345678, item 0042, ratio 0.1234567, +5 points, -1234567",
        "version 1.2.3, score 3-2, at 12:30:45, page 12-15, ISBN 978-3-16-148410-0",
        "+123456 is short",  # six digits: not a phone number
        "call me maybe, 0 7 days",
    ],
)
def test_ordinary_numbers_are_left_alone(text: str):
    assert redact(text) == text


def test_card_numbers_only_when_their_luhn_checksum_holds():
    assert luhn("4111111111111111") and not luhn("4111111111111112")
    assert redact("Visa 4111 1111 1111 1111, Amex 3782-822463-10005") == "Visa <CARD>, Amex <CARD>"
    assert redact("card 5555555555554444.") == "card <CARD>."
    assert (
        redact("ref 4111 1111 1111 1112 and 1111 1111 1111 1111") == "ref 4111 1111 1111 1112 and 1111 1111 1111 1111"
    )


def test_ibans_only_when_mod_97_holds():
    assert valid_iban("DE89 3704 0044 0532 0130 00") and not valid_iban("DE88 3704 0044 0532 0130 00")
    assert redact("pay DE89 3704 0044 0532 0130 00 today") == "pay <IBAN> today"
    assert redact("GB82WEST12345698765432, fr7630006000011234567890189") == "<IBAN>, <IBAN>"
    assert redact("code AB12 CDEF GHIJ KLMN") == "code AB12 CDEF GHIJ KLMN"  # the shape, not the checksum


def test_ip_addresses_v4_and_v6():
    assert redact("from 192.168.1.20 and 10.0.0.1.") == "from <IP> and <IP>."
    assert redact("host 2001:db8::8a2e:370:7334, loopback ::1, mapped ::ffff:192.0.2.1") == (
        "host <IP>, loopback <IP>, mapped <IP>"
    )
    assert redact("256.1.1.1 and 1.2.3 and 12:30:45 and a::b::c") == "256.1.1.1 and 1.2.3 and 12:30:45 and a::b::c"


def test_credentials_in_urls_keep_the_scheme_and_host():
    assert redact("db postgres://admin:s3cr%40t@db.example.com:5432/app") == (
        "db postgres://<CREDENTIALS>@db.example.com:5432/app"
    )
    assert redact("clone https://ghp_token123@github.com/x/y") == "clone https://<CREDENTIALS>@github.com/x/y"
    assert redact("see https://example.com/a?b=c#d") == "see https://example.com/a?b=c#d"


def test_several_kinds_in_one_text_and_no_overlaps():
    text = "Jane <jane@example.com>, +44 20 7946 0958, IBAN GB82 WEST 1234 5698 7654 32, 4111111111111111, 10.1.2.3"
    assert redact(text) == "Jane <<EMAIL>>, <PHONE>, IBAN <IBAN>, <CARD>, <IP>"
    spans = find(text)
    assert [s.kind for s in spans] == ["EMAIL", "PHONE", "IBAN", "CARD", "IP"]
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:], strict=False))


def test_unicode_text_survives_untouched_but_the_redacted_spans():
    text = "日本語 😀 Ünïcödé\u200b — mail taro@example.jp、電話 +81 3-1234-5678。 ﷺ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢\n\ttab"
    assert redact(text) == "日本語 😀 Ünïcödé\u200b — mail <EMAIL>、電話 <PHONE>。 ﷺ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢\n\ttab"
    plain = "Ça coûte 12,50 € — naïve café, 東京 2024年"
    assert redact(plain) is plain  # nothing to redact: the very same string
    assert redact("") == ""


def test_a_long_text_is_redacted_in_reasonable_time():
    text = ("lorem ipsum 1234 dolor 5.6.7 " * 4000) + "bob@example.com"
    assert redact(text).endswith("<EMAIL>") and len(redact(text)) < len(text)
