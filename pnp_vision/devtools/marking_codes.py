"""What real parts have printed on them, and the wrong-reel markings that matter.

Markings: IC part numbers with date and lot lines, resistor value codes (3-digit E24, 4-digit
E96, EIA-96), SOT-23 codes, tantalum and electrolytic values and voltages, diode codes. A wrong
reel on a real line differs from the right one by a character (`STM32F103C8T6` vs
`STM32F103CBT6`, `103` vs `108`), often one that looks alike, so the negatives are mostly near
misses: one look-alike character (O/0, I/1, B/8, S/5, Z/2, D/0, G/6 first), another character,
two neighbours swapped, a character missing or extra, the right text's other line, and some
unrelated markings. Every negative differs from line 1 and fits the template's pattern.
"""

from __future__ import annotations

import re
import string

import numpy as np

PATTERN = re.compile(r"[A-Z0-9][A-Z0-9-]{0,15}")  # prompts/part_marking.toml
PRIMARY_PAIRS = ("O0", "I1", "B8", "S5", "Z2", "D0", "G6")
LOOKALIKES = (
    *PRIMARY_PAIRS,
    *("QO", "OD", "CG", "EF", "PR", "RB", "MN", "HN", "WM", "UV", "YV", "KX", "JU", "LI"),
    *("A4", "T7", "71", "38", "56", "98"),
)
_LIKE: dict[str, set[str]] = {}
for _a, _b in LOOKALIKES:
    _LIKE.setdefault(_a, set()).add(_b)
    _LIKE.setdefault(_b, set()).add(_a)
_PRIMARY_LIKE: dict[str, set[str]] = {}
for _a, _b in PRIMARY_PAIRS:
    _PRIMARY_LIKE.setdefault(_a, set()).add(_b)
    _PRIMARY_LIKE.setdefault(_b, set()).add(_a)
LETTERS, DIGITS = string.ascii_uppercase, string.digits

NEGATIVE_KINDS = ("lookalike", "changed", "swapped", "missing", "extra", "other_line", "unrelated")
NEGATIVE_WEIGHTS = (0.50, 0.10, 0.10, 0.08, 0.07, 0.08, 0.07)


def looks_alike(a: str, b: str) -> bool:
    return b in _LIKE.get(a, ())


# -- markings -------------------------------------------------------------------------------

IC_PARTS = {
    "soic8": ("NE555", "LM358", "LM393", "TL072", "LM2903", "MAX485", "ATTINY85", "AT24C256",
              "W25Q32JV", "LM386", "UA741", "OPA2134", "TL431", "SN65HVD230", "MCP2551"),
    "soic14": ("74HC00", "74HC04", "74HC14", "LM324", "LM339", "CD4011B", "74HC08", "TL074",
               "74HC32", "MCP6004"),
    "soic16": ("74HC595", "CH340G", "MAX232", "74HC165", "CD4051B", "74HC138", "ULN2003A",
               "SN75176", "MAX3232"),
    "tssop": ("HC595", "LVC245A", "HC4051", "LV1T34", "HC164", "LVC1G14", "TXB0108", "CH340C"),
    "lqfp48": ("STM32F103C8T6", "STM32F103CBT6", "STM32F030C8T6", "GD32F103C8T6",
               "STM32F072CBT6", "STM32L151C8T6", "STM32G030C8T6"),
    "lqfp64": ("STM32F103RCT6", "STM32F401RET6", "STM32F411RET6", "STM32G474RET6",
               "STM32F103RBT6"),
    "lqfp100": ("STM32F407VGT6", "STM32F103VET6", "STM32F429VIT6", "LPC1768FBD100",
                "STM32H743VIT6"),
    "tqfp32": ("ATMEGA328P", "ATMEGA8A", "ATMEGA168PA", "ATMEGA88PA", "ATMEGA328PB"),
    "tqfp44": ("ATMEGA32U4", "ATMEGA16A", "ATMEGA644PA", "ATMEGA32A"),
    "qfn": ("ATMEGA328P", "CP2102N", "DRV8833", "N52832", "ESP32", "ATSAMD21", "TPS63020",
            "CH9102F", "FT231X", "SX1276"),
    "sot223": ("AMS1117", "LM1117", "NCP1117", "AZ1117H", "LD1117"),
}  # fmt: skip
SOT23_CODES = ("1AM", "2A", "J3Y", "2TY", "A7", "A4", "1P", "L4", "702", "S2", "Y1", "W1A", "K72",
               "M6", "1G", "AX", "J6", "B5", "6A", "12W")  # fmt: skip
DIODE_CODES = ("SS14", "SS24", "SS34", "SS54", "M7", "M4", "US1M", "ES1J", "SK34", "SMBJ15A",
               "RS1M", "T4", "S4", "SL", "B19", "KA", "A7W", "5819")  # fmt: skip
E24 = (10, 11, 12, 13, 15, 16, 18, 20, 22, 24, 27, 30, 33, 36, 39, 43, 47, 51, 56, 62, 68, 75,
       82, 91)  # fmt: skip
E96_LETTERS = "ZYRXSABHCDEF"
CAP_CODES = ("105", "155", "225", "335", "475", "685", "106", "156", "226", "336", "476", "686",
             "107", "157", "227")  # fmt: skip
E_VALUES_UF = ("1", "10", "22", "33", "47", "68", "100", "220", "330", "470", "680", "1000")
VOLTS = ("4V", "6.3V", "10V", "16V", "25V", "35V", "50V")


def _pick(rng: np.random.Generator, items) -> str:
    return items[int(rng.integers(len(items)))]


def _code(rng: np.random.Generator, n: int, alphabet: str = LETTERS + DIGITS) -> str:
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), size=n))


def date_code(rng: np.random.Generator) -> str:
    """YYWW, as most makers print it."""
    return f"{int(rng.integers(12, 26)):02d}{int(rng.integers(1, 53)):02d}"


def ic_lines(rng: np.random.Generator, family: str) -> list[str]:
    """Part number, then (usually) a date/lot line and sometimes a third (country, lot)."""
    part = _pick(rng, IC_PARTS[family])
    if rng.random() < 0.15:  # a made-up sibling: the model must read, not recall a list
        i = int(rng.integers(len(part)))
        alphabet = DIGITS if part[i].isdigit() else LETTERS
        part = part[:i] + _pick(rng, alphabet) + part[i + 1 :]
    n = int(rng.choice([1, 2, 3], p=[0.2, 0.5, 0.3]))
    options = [
        lambda: date_code(rng),
        lambda: _code(rng, int(rng.integers(5, 8))),
        lambda: f"{_pick(rng, ('AU', 'MU', 'PU', 'E3', 'GH', 'TI'))} {date_code(rng)}",
        lambda: f"{_code(rng, int(rng.integers(3, 6)))} {_code(rng, 2, DIGITS)}",
        lambda: f"{_pick(rng, ('CHN', 'MYS', 'PHL', 'TWN'))} {_code(rng, 3)}",
    ]
    lines = [part]
    for _ in range(n - 1):
        lines.append(options[int(rng.integers(len(options)))]())
    return lines


def resistor_code(rng: np.random.Generator, size: str) -> str:
    """A chip resistor's value code: EIA-96 (mostly 0603 1%), 4-digit E96 or 3-digit E24."""
    style = rng.choice(["eia96", "4digit", "3digit"], p=[0.6, 0.1, 0.3] if size == "0603" else
                       [0.0, 0.45, 0.55])  # fmt: skip
    if style == "eia96":
        return f"{int(rng.integers(1, 97)):02d}{_pick(rng, E96_LETTERS)}"
    if style == "4digit":
        digits = f"{int(rng.integers(100, 1000))}"
        return digits[:2] + "R" + digits[2] if rng.random() < 0.15 else digits + _pick(rng, "01234")
    value = _pick(rng, E24)
    if rng.random() < 0.15:  # below 10 ohm: the R is the decimal point
        return f"{value // 10}R{value % 10}" if rng.random() < 0.7 else f"R{value}"
    return f"{value}{int(rng.integers(0, 6))}"


def sot23_lines(rng: np.random.Generator) -> list[str]:
    code = _pick(rng, SOT23_CODES) if rng.random() < 0.6 else _code(rng, int(rng.integers(2, 4)))
    return [code] if rng.random() < 0.8 else [code, _code(rng, 1)]


def sot223_lines(rng: np.random.Generator) -> list[str]:
    lines = [_pick(rng, IC_PARTS["sot223"]), _pick(rng, ("3.3", "5.0", "ADJ", "1.8", "2.5"))]
    return [*lines, date_code(rng)] if rng.random() < 0.5 else lines


def tantalum_lines(rng: np.random.Generator) -> list[str]:
    code = _pick(rng, CAP_CODES)
    if rng.random() < 0.3:
        return [_pick(rng, "AGJCDEV") + code]  # a voltage letter before the value
    return [code, f"{_pick(rng, ('4', '6', '10', '16', '20', '25', '35'))}{_pick(rng, 'KV')}"]


def electrolytic_lines(rng: np.random.Generator) -> list[str]:
    return [_pick(rng, E_VALUES_UF), _pick(rng, VOLTS)]


def diode_lines(rng: np.random.Generator) -> list[str]:
    code = _pick(rng, DIODE_CODES)
    return [code] if rng.random() < 0.7 else [code, date_code(rng)]


def unrelated(rng: np.random.Generator) -> str:
    """A marking from another reel altogether."""
    kind = rng.integers(4)
    if kind == 0:
        family = _pick(rng, tuple(IC_PARTS))
        return _pick(rng, IC_PARTS[family])
    if kind == 1:
        return resistor_code(rng, _pick(rng, ("0603", "0805")))
    if kind == 2:
        return _pick(rng, SOT23_CODES + DIODE_CODES + CAP_CODES)
    return _code(rng, int(rng.integers(3, 9)))


# -- negatives ------------------------------------------------------------------------------


def distance(a: str, b: str) -> int:
    """Levenshtein distance."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def _substitute(rng: np.random.Generator, text: str, lookalike: bool) -> str | None:
    spots = [i for i, c in enumerate(text) if c in _LIKE]
    if not spots:
        return None
    if lookalike:
        primary = [i for i in spots if text[i] in _PRIMARY_LIKE]
        if primary and rng.random() < 0.75:
            i = _pick(rng, primary)
            return text[:i] + _pick(rng, sorted(_PRIMARY_LIKE[text[i]])) + text[i + 1 :]
        i = _pick(rng, spots)
        return text[:i] + _pick(rng, sorted(_LIKE[text[i]])) + text[i + 1 :]
    i = _pick(rng, spots)
    alphabet = DIGITS if text[i].isdigit() else LETTERS
    choices = [c for c in alphabet if c != text[i] and not looks_alike(text[i], c)]
    return text[:i] + _pick(rng, choices) + text[i + 1 :]


def _negative(rng: np.random.Generator, lines: list[str], kind: str) -> str | None:
    text = lines[0]
    if kind in ("lookalike", "changed"):
        return _substitute(rng, text, kind == "lookalike")
    if kind == "swapped":
        spots = [i for i in range(len(text) - 1) if text[i] != text[i + 1]]
        if not spots:
            return None
        i = _pick(rng, spots)
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if kind == "missing":
        i = int(rng.integers(len(text)))
        return text[:i] + text[i + 1 :]
    if kind == "extra":
        i = int(rng.integers(len(text) + 1))
        new = text[i - 1] if i and rng.random() < 0.4 else _pick(rng, LETTERS + DIGITS)
        return text[:i] + new + text[i:]
    if kind == "other_line":
        others = [line for line in lines[1:] if PATTERN.fullmatch(line) and line != text]
        return _pick(rng, others) if others else None
    other = unrelated(rng)
    return other if distance(other, text) >= 2 else None


def classify(asked: str, lines: list[str]) -> str | None:
    """How `asked` differs from line 1 (None: it does not, it is line 1). A negative of kind
    K classifies as K: this is the check the tests hold the generator to."""
    text = lines[0]
    if asked == text:
        return None
    if len(asked) == len(text):
        diff = [i for i in range(len(text)) if asked[i] != text[i]]
        if len(diff) == 1:
            i = diff[0]
            return "lookalike" if looks_alike(text[i], asked[i]) else "changed"
        if len(diff) == 2 and diff[1] == diff[0] + 1:
            i = diff[0]
            if asked[i] == text[i + 1] and asked[i + 1] == text[i]:
                return "swapped"
    if len(asked) == len(text) - 1 and distance(asked, text) == 1:
        return "missing"
    if len(asked) == len(text) + 1 and distance(asked, text) == 1:
        return "extra"
    if asked in lines[1:]:
        return "other_line"
    return "unrelated"


def negative(rng: np.random.Generator, lines: list[str]) -> tuple[str, str]:
    """A wrong-reel marking for a part whose marking is `lines`, and its kind; it fits the
    template's pattern and differs from line 1 as its kind says."""
    weights = np.asarray(NEGATIVE_WEIGHTS)
    for _ in range(50):
        kind = NEGATIVE_KINDS[int(rng.choice(len(weights), p=weights / weights.sum()))]
        text = _negative(rng, lines, kind)
        if text is not None and PATTERN.fullmatch(text) and classify(text, lines) == kind:
            return text, kind
    raise ValueError(f"no negative for {lines!r}")  # unreachable for real markings
