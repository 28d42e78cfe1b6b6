"""Java's regex and number syntax where Python's differs: the patterns, $n templates and values of rules."""
from __future__ import annotations

import math
import re


def java_double_of(text: str) -> float | None:
    """Double.valueOf: surrounding blanks, a d/f suffix, NaN and Infinity allowed; None if not a number."""
    t = text.strip(" \t\n\r\x0b\x0c\x00")
    if not _JAVA_NUMBER.fullmatch(t):
        return None
    t = t.rstrip("dDfF") if not t.endswith("Infinity") else t
    if t.lstrip("+-") == "NaN":
        return math.nan
    if t.lstrip("+-") == "Infinity":
        return -math.inf if t.startswith("-") else math.inf
    if "x" in t or "X" in t:
        return float.fromhex(t)
    return float(t)


_JAVA_NUMBER = re.compile(r"[+-]?(NaN|Infinity|((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"
                          r"|0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+)[fFdD]?)")


# -- Java regex -> Python re ---------------------------------------------------------------------------
_POSIX = {"Lower": "a-z", "Upper": "A-Z", "ASCII": "\\x00-\\x7F", "Alpha": "a-zA-Z", "Digit": "0-9",
          "Alnum": "a-zA-Z0-9", "Punct": "!-/:-@\\[-`{-~", "Graph": "!-~", "Print": " -~", "Blank": " \\t",
          "Cntrl": "\\x00-\\x1F\\x7F", "XDigit": "0-9a-fA-F", "Space": " \\t\\n\\x0B\\f\\r",
          "javaLowerCase": "a-z", "javaUpperCase": "A-Z", "IsAlphabetic": "a-zA-Z", "IsDigit": "0-9"}


class RegexError(ValueError):
    pass


# Java's '.' stops at every line terminator, Python's only at \n
_JAVA_DOT = "[^\\n\\r\\u0085\\u2028\\u2029]"
_INLINE_DOTALL = re.compile(r"\(\?[a-zA-Z]*s[a-zA-Z-]*[:)]")


def translate_java_regex(pattern: str) -> str:
    """Java regex syntax Python's re lacks: \\Q..\\E, (?<name>..), \\p{Posix}; possessive
    quantifiers and atomic groups are native in Python 3.11. Unsupported constructs raise."""
    out: list[str] = []
    i, n = 0, len(pattern)
    # a pattern that sets DOTALL itself ((?s), (?s:...)) keeps Python's '.', which the flag scopes
    java_dot = _JAVA_DOT if not _INLINE_DOTALL.search(pattern) else "."
    in_class = 0
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt == "Q":
                end = pattern.find("\\E", i + 2)
                literal = pattern[i + 2:] if end < 0 else pattern[i + 2:end]
                out.append(re.escape(literal))
                i = n if end < 0 else end + 2
                continue
            if nxt in "pP":
                m = re.match(r"\{(\w+)\}|(\w)", pattern[i + 2:])
                if not m:
                    raise RegexError(f"malformed \\{nxt} at position {i}")
                cls = m.group(1) or m.group(2)
                cls = cls[2:] if cls.startswith("Is") and cls[2:] in _POSIX else cls
                if cls not in _POSIX:
                    raise RegexError(f"Java character class \\{nxt}{{{cls}}} has no Python equivalent")
                body = _POSIX[cls]
                if in_class:
                    if nxt == "P":
                        raise RegexError(f"negated class \\P{{{cls}}} inside [...] has no Python equivalent")
                    out.append(body)
                else:
                    out.append(f"[{'^' if nxt == 'P' else ''}{body}]")
                i += 2 + m.end()
                continue
            if nxt in "zZ":
                # Java \z is the very end (Python \Z); Java \Z also allows a final line terminator
                out.append("\\Z" if nxt == "z" else "(?=\\n?\\Z)")
                i += 2
                continue
            if nxt in "GRXhHvV":
                raise RegexError(f"Java construct \\{nxt} has no Python equivalent")
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if c == "[":
            if in_class and pattern[i + 1:i + 2] != ":":
                raise RegexError("nested character classes (Java [a-z[0-9]] or &&) have no Python equivalent")
            in_class += 1
        elif c == "]" and in_class:
            in_class -= 1
        elif c == "&" and in_class and pattern[i:i + 2] == "&&":
            raise RegexError("character class intersection && has no Python equivalent")
        elif c == "." and not in_class:
            out.append(java_dot)
            i += 1
            continue
        elif c == "(" and pattern[i:i + 3] == "(?<" and pattern[i + 3:i + 4] not in ("=", "!"):
            out.append("(?P<")
            i += 3
            continue
        out.append(c)
        i += 1
    return "".join(out)


def expand(template: str, m: re.Match[str]) -> str:
    """Matcher.replaceAll(template) when the whole input matched: $n / ${name} expanded."""
    out: list[str] = []
    i, n = 0, len(template)
    groups = m.re.groups
    while i < n:
        c = template[i]
        if c == "\\" and i + 1 < n:
            out.append(template[i + 1])
            i += 2
        elif c == "$" and i + 1 < n and template[i + 1] == "{":
            end = template.index("}", i)
            out.append(m.group(template[i + 2:end]) or "")
            i = end + 1
        elif c == "$" and i + 1 < n and template[i + 1].isdigit():
            j = i + 2
            num = int(template[i + 1])
            if num > groups:
                raise IndexError(f"No group {num}")
            # Java takes more digits while they still name an existing group
            while j < n and template[j].isdigit() and num * 10 + int(template[j]) <= groups:
                num = num * 10 + int(template[j])
                j += 1
            out.append(m.group(num) or "")
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)
