"""Operations that edit header values in place (cookieFlags), as Go statements and words.

Their Go runtime lives in files of its own (runtime/cookieflags.go, runtime/cookies.go),
which the project carries only when a rule needs them.
"""

from __future__ import annotations

from typing import Any

from wasmgen.backends.compiled.goident import gostr

# Output file -> the operation whose rules need it (the runtime folder holds both).
RUNTIME_FILES = {"cookieflags.go": "cookieFlags", "cookies.go": "cookieFlags"}
_FLAG = {None: "flagKeep", True: "flagAdd", False: "flagDrop"}


def runtime_files(config: dict[str, Any]) -> list[str]:
    """The runtime files the rules of config need, beyond the ones every project has."""
    used = {op for phase in ("request", "response") for r in config.get(phase, []) for op in r}
    return [name for name, op in RUNTIME_FILES.items() if op in used]


def describe_cookie_flags(flags: dict[str, Any]) -> str:
    """'cookieFlags Secure, HttpOnly, SameSite=Lax on session, csrf'."""
    words = [
        ("" if flags[key] else "no ") + word
        for key, word in (("secure", "Secure"), ("httpOnly", "HttpOnly"))
        if key in flags
    ]
    if "sameSite" in flags:
        words.append(f"SameSite={flags['sameSite']}")
    where = f" on {', '.join(flags['cookies'])}" if "cookies" in flags else ""
    return f"cookieFlags {', '.join(words)}{where}"


def cookie_flags_lines(
    tables: list[str], flags: dict[str, Any], phase: str, index: int
) -> list[str]:
    """A package-level cookieFlags value for the rule, and the statement that applies it."""
    name = f"{phase}{index}Cookies"
    fields = [
        f"secure: {_FLAG[flags.get('secure')]}",
        f"httpOnly: {_FLAG[flags.get('httpOnly')]}",
    ]
    if "sameSite" in flags:
        fields.append(f"sameSite: {gostr('SameSite=' + flags['sameSite'])}")
    if "cookies" in flags:
        fields.append(f"cookies: []string{{{', '.join(gostr(c) for c in flags['cookies'])}}}")
    tables += [
        f"// What {phase}[{index}] does to each Set-Cookie.",
        f"var {name} = cookieFlags{{{', '.join(fields)}}}",
        "",
    ]
    return [f"hardenCookies({phase}Headers, &{name})"]
