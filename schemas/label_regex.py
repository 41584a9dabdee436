"""The regex dialect of label matchers (a silence's `=~` and `!~`): RE2, fully anchored, as Alertmanager's.

Label values come from logs — an endpoint is a request path anyone on the internet can choose — so matching must
not backtrack. RE2 matches in time linear in the text whatever the pattern; Python's `re` took 4.4 s for
`endpoint=~/api/(a+)+` against a 27-character path, doubling with every character. A pattern RE2 does not
accept (backreferences, lookarounds, possessive quantifiers, …) is refused with RE2's reason, never run by
another engine. Fully anchored: `/api/.*` must match the whole value.

It lives in `schemas` (the lowest layer) because the silence schema refuses what it cannot compile and the
matcher (`pipeline.rules.silences`) runs it: one dialect for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # the reason goes into the error, not to stderr


class LabelRegexError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class LabelRegex:
    pattern: str
    compiled: Any  # an RE2 program (google-re2 has no type information)

    def fullmatch(self, text: str) -> bool:
        """Whether the whole of `text` matches (linear in its length)."""
        try:
            return self.compiled.fullmatch(text) is not None
        except UnicodeError:  # a lone surrogate: RE2 reads UTF-8, so it is matched as U+FFFD would be
            return self.compiled.fullmatch(text.encode("utf-8", "replace").decode()) is not None


def compile_label_regex(pattern: str) -> LabelRegex:
    """The RE2 program of `pattern`; LabelRegexError with RE2's reason when RE2 does not accept it."""
    try:
        return LabelRegex(pattern, re2.compile(pattern, _OPTIONS))
    except re2.error as error:
        reason = error.args[0] if error.args else "not accepted"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise LabelRegexError(f"{reason} (matchers use RE2 syntax, as Alertmanager: no backreferences or "
                              "lookarounds)") from None
    except (TypeError, UnicodeError) as error:  # e.g. a lone surrogate cannot be encoded for RE2
        raise LabelRegexError(f"not a regex RE2 can read: {error}") from None
