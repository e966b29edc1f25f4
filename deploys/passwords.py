"""Which passwords are too weak or unfit to deploy: the standard library only, so that the container
image's entrypoint (which ships this file as ``omero_passwords``) judges a password as the
deploy does.

A password a person chose is refused when a guesser's first tries find it: short, a
well-known word, one chunk repeated, a run along the alphabet, the digits or a keyboard
row, or such a word with a run or repetition around it. Generated passwords never are.
"""

MIN_LENGTH = 12
WELL_KNOWN = ("omero", "password", "passwort", "passw0rd", "changeme", "secret", "admin", "root",
              "ome", "letmein", "welcome", "qwerty", "azerty", "iloveyou", "monkey", "dragon",
              "master", "login", "default", "postgres", "test")
# Runs a guesser walks along: each read forwards and backwards.
_RUNS = ("abcdefghijklmnopqrstuvwxyz", "0123456789", "qwertyuiopasdfghjklzxcvbnm", "qwertyuiop", "asdfghjkl", "zxcvbnm",
         "qwertzuiop", "yxcvbnm", "azertyuiop", "qsdfghjklm", "wxcvbn", "1qaz2wsx3edc4rfv5tgb6yhn")


def _repeated(text: str) -> bool:
    """One chunk said again and again (``abcabcabcabc``), or a single character."""
    return len(text) > 0 and (text + text).find(text, 1) < len(text)


def _along_a_run(text: str) -> bool:
    """Consecutive characters of one run (wrapping round), forwards or backwards."""
    if len(text) < 3:
        return False
    for run in _RUNS:
        for line in (run, run[::-1]):
            loop = line * (len(text) // len(line) + 2)
            if text in loop:
                return True
    return False


def _trivial(text: str) -> bool:
    """Nothing a guesser would need to try hard for around a word."""
    # Up to four digits (a year, a PIN) are tried in full.
    return (not text or (text.isdigit() and len(text) <= 4) or _repeated(text) or _along_a_run(text)
            or len(set(text)) <= 2)


def weakness(password: str) -> str | None:
    """Why ``password`` is too weak to deploy, or None. Never quotes the password."""
    if len(password) < MIN_LENGTH:
        return f"is shorter than {MIN_LENGTH} characters"
    folded = password.lower()
    if len(set(folded)) < 5:
        return "has fewer than 5 different characters"
    if _repeated(folded):
        return "is one chunk repeated"
    if _along_a_run(folded):
        return "runs along the alphabet, the digits or a keyboard row"
    for word in WELL_KNOWN:
        start = folded.find(word)
        if start != -1 and _trivial(folded[:start]) and _trivial(folded[start + len(word):]):
            return "is a well-known password, alone or with a run or repetition around it"
    return None


def refusal(password: str, *, single_quote: bool = True) -> str | None:
    """Why ``password`` cannot be used, or None: too weak, or not printable ASCII (nor,
    unless ``single_quote``, holding one). Never quotes the password."""
    weak = weakness(password)
    if weak:
        return (f"{weak}: too weak (use 12 characters or more that no guesser tries first, or leave it "
                "unset to have one generated)")
    if not password.isascii() or not password.isprintable() or (not single_quote and "'" in password):
        return "must be printable ASCII" + ("" if single_quote else ", without a single quote")
    return None
