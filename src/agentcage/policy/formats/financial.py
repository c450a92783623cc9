"""Built-in formats for money: card numbers, IBANs, and cryptocurrency keys and seeds.

None has a provider: a card number, a bank account or a wallet key goes nowhere
from a coding agent, so they are blocked toward every host. Each is confirmed by
its checksum (Luhn, mod-97, Base58Check, the BIP-39 checksum) so that numbers and
words that merely look right do not count. Wallet addresses are public and only
flagged. See `pattern.py` for the rules every format follows.
"""

from __future__ import annotations

import itertools
import re

from agentcage.policy.formats.checksums import (
    base58check,
    bech32_valid,
    iban_mod97,
    luhn,
    mnemonic_bytes,
)
from agentcage.policy.formats.documentation import digits_example, filler
from agentcage.policy.formats.pattern import END, START, CredentialPattern, make
from agentcage.policy.formats.published_examples import published
from agentcage.policy.formats.shapes import NUMBER_GROUPS, WORD_RUNS
from agentcage.policy.formats.wordlist import bip39_index
from agentcage.policy.types import Verdict

_BASE58 = rb"[1-9A-HJ-NP-Za-km-z]"
# Issuer prefixes and lengths (ISO/IEC 7812 ranges the networks publish).
_CARD = re.compile(
    rb"4(?:[0-9]{15}|[0-9]{18})"  # Visa
    rb"|5[1-5][0-9]{14}"  # Mastercard
    rb"|2(?:22[1-9]|2[3-9][0-9]|[3-6][0-9]{2}|7[01][0-9]|720)[0-9]{12}"  # Mastercard 2-series
    rb"|3[47][0-9]{13}"  # American Express
    rb"|6(?:011|4[4-9][0-9]|5[0-9]{2})[0-9]{12,15}"  # Discover
    rb"|35(?:2[89]|[3-8][0-9])[0-9]{12,15}"  # JCB
    rb"|3(?:0[0-5]|[689][0-9])[0-9]{11,13}"  # Diners Club
    rb"|62[0-9]{14,17}"  # UnionPay
)
_GROUPINGS = {(4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4), (4, 4, 4, 2), (4, 4, 4, 3)}


def _card(text: bytes) -> bool:
    digits = re.sub(rb"[ -]", b"", text)
    groups = tuple(len(g) for g in re.split(rb"[ -]", text))
    if len(groups) > 1 and (groups not in _GROUPINGS or len(set(re.findall(rb"[ -]", text))) > 1):
        return False
    return _CARD.fullmatch(digits) is not None and luhn(digits)


# Sixteen random digits are a card number one time in ten (issuer prefix aside, the
# Luhn digit); order numbers, snowflake and trace IDs are such digits. A card is
# written grouped as printed, or labelled, or followed by its expiry date.
_CARD_LABEL = re.compile(
    rb"(?i:card|cc[_ -]?(?:num|no)|ccn|\bpan\b|credit|debit|visa|mastercard|amex|payment"
    rb"|kreditkarte|carte|tarjeta)"
)
_EXPIRY = re.compile(rb"^[^0-9A-Za-z]{1,4}(?:0[1-9]|1[0-2])/(?:20)?[0-9]{2}(?![0-9])")


def _card_context(match: re.Match[bytes]) -> bool:
    if re.search(rb"[ -]", match.group()):
        return True
    data, (start, end) = match.string, match.span()
    if _CARD_LABEL.search(data, max(0, start - 80), start):
        return True
    return _EXPIRY.match(data[end : end + 16]) is not None


def _card_example(text: bytes) -> bool:
    return digits_example(re.sub(rb"[ -]", b"", text))


# Length of each country's IBAN (the SWIFT IBAN registry).
_IBAN_LENGTHS = {
    **dict.fromkeys(("NO",), 15),
    **dict.fromkeys(("BE",), 16),
    **dict.fromkeys(("DK", "FI", "FO", "GL", "NL"), 18),
    **dict.fromkeys(("MK", "SI"), 19),
    **dict.fromkeys(("AT", "BA", "EE", "KZ", "LT", "LU", "XK"), 20),
    **dict.fromkeys(("CH", "HR", "LI", "LV"), 21),
    **dict.fromkeys(("BG", "BH", "CR", "DE", "GB", "GE", "IE", "ME", "RS", "VA"), 22),
    **dict.fromkeys(("AE", "GI", "IL", "IQ", "TL"), 23),
    **dict.fromkeys(("AD", "CZ", "ES", "MD", "PK", "RO", "SA", "SE", "SK", "TN", "VG"), 24),
    **dict.fromkeys(("LY", "PT", "ST"), 25),
    **dict.fromkeys(("IS", "TR"), 26),
    **dict.fromkeys(("FR", "GR", "IT", "MC", "MR", "SM"), 27),
    **dict.fromkeys(("AL", "AZ", "BY", "CY", "DO", "GT", "HU", "LB", "PL", "SV"), 28),
    **dict.fromkeys(("BR", "EG", "PS", "QA", "UA"), 29),
    **dict.fromkeys(("JO", "KW", "MU"), 30),
    **dict.fromkeys(("MT", "SC"), 31),
    **dict.fromkeys(("LC",), 32),
}


def _iban_of(text: bytes) -> bytes | None:
    """The IBAN at the start of `text`: as long as its country says, ending where
    a space-separated group ends."""
    length = _IBAN_LENGTHS.get(text[:2].decode("ascii", "replace"))
    if length is None:
        return None
    compact = text.replace(b" ", b"")
    if len(compact) < length:
        return None
    if len(compact) > length:
        seen = 0
        for index, char in enumerate(text):
            seen += char != 0x20
            if seen == length:
                if text[index + 1 : index + 2] != b" ":
                    return None
                break
    iban = compact[:length]
    return iban if iban[2:4].isdigit() and iban_mod97(iban) else None


def _iban_example(text: bytes) -> bool:
    iban = _iban_of(text) or text
    digits = re.sub(rb"[^0-9]", b"", iban[4:])
    return published(iban) or (len(digits) >= 10 and digits_example(digits))


def _wif(text: bytes) -> bool:
    payload = base58check(text)
    if payload is None or payload[0] not in (0x80, 0xEF):
        return False
    return len(payload) == 33 or (len(payload) == 34 and payload[-1] == 1)


def _extended_private(text: bytes) -> bool:
    payload = base58check(text)
    return payload is not None and len(payload) == 78 and payload[45] == 0


def _address(text: bytes) -> bool:
    if text[:3].lower() in (b"bc1", b"tb1"):
        return bech32_valid(text)
    payload = base58check(text)
    return payload is not None and len(payload) == 21 and payload[0] in (0x00, 0x05)


def _key_example(text: bytes) -> bool:
    payload = base58check(text) or b""
    return published(text) or filler(payload[1:33].hex().encode())


def _hex_example(text: bytes) -> bool:
    return published(text.lower()) or filler(text.lower())


def _phrases(text: bytes) -> list[list[int]]:
    """The valid BIP-39 mnemonics in a stretch of words (word indexes)."""
    words = re.findall(rb"[a-z]+", text)
    found: list[list[int]] = []
    run: list[int] = []
    for word in [*words, b""]:
        index = bip39_index(word)
        if index is not None:
            run.append(index)
            continue
        for start in range(len(run)):
            for size in (24, 21, 18, 15, 12):
                window = run[start : start + size]
                if len(window) == size and mnemonic_bytes(window) is not None:
                    found.append(window)
        run = []
    return found


# Lists of common words are mostly BIP-39 words (the list was chosen from them), and
# one window in sixteen has a valid 12-word checksum: a phrase counts when no other
# word is next to it (a value, a line, a file of its own), or when a label precedes it.
_SEED_LABEL = re.compile(rb"(?i:seed|mnemonic|recovery|phrase|wallet|backup|bip-?39)")
_LONGEST_LABELLED = 30


_NEIGHBOUR_BEFORE = re.compile(rb"[A-Za-z](?:[ \t\r\n,\"']|\\[nrt]){1,4}$")
_NEIGHBOUR_AFTER = re.compile(rb"(?:[ \t\r\n,\"']|\\[nrt]){1,4}[A-Za-z]")


def _seed_context(match: re.Match[bytes]) -> bool:
    words = re.findall(rb"[a-z]+", match.group())
    indexes = [bip39_index(word) for word in words]
    data, start, end = match.string, match.start(), match.end()
    alone = not (
        _NEIGHBOUR_BEFORE.search(data, max(0, start - 8), start)
        or _NEIGHBOUR_AFTER.match(data, end, end + 8)
    )
    if alone and None not in indexes and mnemonic_bytes([i for i in indexes if i is not None]):
        return True
    # The label may be a word of the stretch itself ("recovery phrase: ...").
    labelled = _SEED_LABEL.search(data, max(0, start - 64), start + 24) is not None
    return labelled and len(words) <= _LONGEST_LABELLED and bool(_phrases(match.group()))


def _seed_example(text: bytes) -> bool:
    """Test vectors and wordlist excerpts: few distinct words or entropy bytes, or
    the words in wordlist order."""
    for phrase in _phrases(text):
        entropy = mnemonic_bytes(phrase) or b""
        ordered = all(a < b for a, b in itertools.pairwise(phrase))
        if not (len(set(phrase)) <= 2 or len(set(entropy)) <= 2 or ordered):
            return False
    return True


FINANCIAL_PATTERNS: tuple[CredentialPattern, ...] = (
    make(
        "payment_card_number",
        rb"(?<![0-9A-Za-z_.+-])[2-6][0-9]{3}(?:[ -]?[0-9]){10,15}(?![0-9A-Za-z_]|\.[0-9])",
        (),
        (),
        "Payment card number (issuer prefix, length and Luhn digit; labelled, grouped or "
        "with its expiry)",
        check=_card,
        context=_card_context,
        example=_card_example,
        shape=NUMBER_GROUPS,
    ),
    make(
        "iban",
        rb"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,40}(?![A-Za-z0-9])",
        (),
        (),
        "International bank account number (registry length and mod-97)",
        check=lambda text: _iban_of(text) is not None,
        example=_iban_example,
        shape=NUMBER_GROUPS,
    ),
    make(
        "bitcoin_private_key",
        START + rb"[5KLc9]" + _BASE58 + rb"{50,51}" + END,
        (),
        (),
        "Bitcoin private key in Wallet Import Format (Base58Check)",
        check=_wif,
        example=_key_example,
    ),
    make(
        "extended_private_key",
        START + rb"[xtyzuvYZUV]prv" + _BASE58 + rb"{107,108}" + END,
        (b"xprv", b"tprv", b"yprv", b"zprv", b"uprv", b"vprv", b"Yprv", b"Zprv", b"Uprv", b"Vprv"),
        (),
        "BIP-32 extended private key (xprv, yprv, zprv, tprv...)",
        check=_extended_private,
        example=lambda text: published(text),
    ),
    make(
        "hex_private_key",
        rb"(?i:private[_ .-]?key|privkey|priv[_-]key|signer[_-]?key|wallet[_-]?key)"
        rb"[A-Za-z0-9_]{0,20}(?:\\?[\"'])?\s{0,3}[:=]\s{0,3}(?:\\?[\"'])?(?:0x)?"
        rb"(?P<v>[0-9a-fA-F]{64})(?![0-9A-Za-z])",
        (
            b"rivate_key",
            b"RIVATE_KEY",
            b"rivateKey",
            b"rivate-key",
            b"rivate.key",
            b"rivate key",
            b"rivkey",
            b"RIVKEY",
            b"rivKey",
            b"riv_key",
            b"RIV_KEY",
            b"igner_key",
            b"IGNER_KEY",
            b"ignerKey",
            b"allet_key",
            b"ALLET_KEY",
            b"alletKey",
        ),
        (),
        "256-bit hex private key next to its name (Ethereum and other wallets)",
        example=_hex_example,
    ),
    make(
        "seed_phrase",
        rb"(?<![A-Za-z])[a-z]{3,8}(?:(?:[ \t\r\n,\"']|\\[nrt]){1,4}[a-z]{3,8}){11,200}(?![A-Za-z])",
        (),
        (),
        "BIP-39 mnemonic seed phrase (wordlist and checksum)",
        context=_seed_context,
        example=_seed_example,
        shape=WORD_RUNS,
    ),
    make(
        "bitcoin_address",
        # `START` after the first characters, so that `re` can skip to them quickly.
        rb"[13bt](?<![A-Za-z0-9_-][13bt])(?:(?<=[13])" + _BASE58 + rb"{25,33}"
        rb"|(?<=b)c1[02-9ac-hj-np-z]{38,87}|(?<=t)b1[02-9ac-hj-np-z]{38,87})" + END,
        (),
        (),
        "Bitcoin address (flagged: public, but it ties a wallet to the cage)",
        Verdict.FLAG,
        check=_address,
        example=lambda text: published(text),
    ),
)
