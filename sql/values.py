"""The values a staging column accepts beyond its type: what the star tables' types and data
tests (sql/model.py) would refuse later, so that staging rejects one record instead."""

from __future__ import annotations


def digits_up_to(limit: int) -> str:
    """A regular expression (RE2, Python and POSIX alike) whose whole match is a whole number
    from 0 to limit written in digits, leading zeros allowed."""
    text = str(limit)
    options = [f"[0-9]{{1,{len(text) - 1}}}"] if len(text) > 1 else []
    for at, digit in enumerate(text):
        rest = len(text) - at - 1
        tail = f"[0-9]{{{rest}}}" if rest else ""
        if at == len(text) - 1:
            options.append(f"{text[:at]}[0-{digit}]")
        elif digit != "0":
            low = "1" if at == 0 else "0"
            if int(digit) - 1 >= int(low):
                options.append(f"{text[:at]}[{low}-{int(digit) - 1}]{tail}")
    return f"0*({'|'.join(options)})"


# A user's level: what the users and songplays tables accept (and staging, with any trailing
# blanks the transforms trim, so that one other value is a reject, not a failed check).
LEVELS = ("free", "paid")

# userId: '' for a logged-out event, else a number the users table's INTEGER holds; a larger one
# would fail the transform's cast and with it the whole run, so staging rejects it.
USER_ID_PATTERN = f"({digits_up_to(2**31 - 1)})?"

# What staging accepts of a level and a userId, and what a reject says of another value.
LEVEL_VALUES = {
    "pattern": f"({'|'.join(LEVELS)}) *",
    "pattern_says": f"not one of {', '.join(LEVELS)}",
}
# The page of an event that is a play: a play is a user's, so a NextSong event without a userId
# is a reject, not an event the transforms would pass over in silence.
PLAY_PAGE = "NextSong"
USER_ID_VALUES = {
    "pattern": USER_ID_PATTERN,
    "pattern_says": f"not empty nor a number from 0 to {2**31 - 1}",
    "needed_when": ("page", PLAY_PAGE),
}
