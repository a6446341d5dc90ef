"""Validated name and value types: header names, header values, Kubernetes names, regexes."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator

if TYPE_CHECKING:
    import re2

TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
VARIANT_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
METHOD = TOKEN

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "transfer-encoding",
        "upgrade",
        "trailer",
        "proxy-authenticate",
        "proxy-authorization",
    }
)
# Headers a rule may not touch, with the reason shown to the user (mirrored in config.go).
FORBIDDEN_HEADERS: dict[str, str] = {
    **dict.fromkeys(HOP_BY_HOP, "hop-by-hop header"),
    "content-length": "framing is Envoy's job; changing content-length corrupts the message",
    "host": "use conditions on the authority instead of rewriting host",
}
MAX_VALUE_BYTES = 16384  # Envoy's per-value cap
# Envoy caps a request's whole header section at 60 KiB by default; no real name comes close
# to this bound, and it keeps a spec's names from multiplying into megabytes through aliases.
MAX_NAME_BYTES = 256


def check_header_name(name: str) -> str:
    """Accept a lower-case RFC 9110 token that a rule may change."""
    if not name:
        raise ValueError("header name is empty")
    if len(name) > MAX_NAME_BYTES:
        raise ValueError(
            f"header name is {len(name)} bytes long; wasmgen accepts at most {MAX_NAME_BYTES} "
            "(Envoy caps the whole header section at 60 KiB)"
        )
    if "${" in name or "$$" in name:
        raise ValueError(
            f"{name!r} holds an expression, but header names are fixed: only values take "
            "${...} expressions"
        )
    if name.startswith(":"):
        raise ValueError(f"{name!r} is a pseudo-header; header rules cannot change it")
    if not TOKEN.match(name):
        raise ValueError(f"{name!r} is not a valid header name (RFC 9110 token)")
    if name != name.lower():
        raise ValueError(
            f"header name {name!r} must be lower-case (HTTP/2 and Envoy use {name.lower()!r})"
        )
    if name in FORBIDDEN_HEADERS:
        raise ValueError(f"{name!r} cannot be changed: {FORBIDDEN_HEADERS[name]}")
    return name


def check_remove_name(name: str) -> str:
    """Accept a header name, or a prefix ending in '*' such as 'x-envoy-*'."""
    if name.endswith("*"):
        check_header_name(name[:-1])
        return name
    return check_header_name(name)


def check_header_value(value: str) -> str:
    """Refuse control characters (header injection) and over-long values."""
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise ValueError("value is longer than Envoy's 16 KiB limit")
    for ch in value:
        code = ord(ch)
        if (code < 0x20 and ch != "\t") or code == 0x7F:
            raise ValueError(
                f"value contains control character 0x{code:02x} (CR, LF and NUL allow header injection)"
            )
        if code > 0x7E:
            raise ValueError(
                f"value contains the non-ASCII character {ch!r} (U+{code:04X}): header values "
                "must be ASCII (RFC 9110 5.5); percent-encode it, or use RFC 8187 (UTF-8'') form"
            )
    return value


def check_plain_text(text: str) -> str:
    """Refuse control characters in what is printed and written as text (test names, paths,
    hosts): a terminal would run an escape sequence, and XML 1.0 cannot hold most of them."""
    for ch in text:
        code = ord(ch)
        if code < 0x20 or 0x7F <= code < 0xA0:
            raise ValueError(
                f"contains control character 0x{code:02x}; write it percent-encoded (%{code:02X}) "
                "in a path, and leave it out of names and hosts"
            )
    return text


def check_method(method: str) -> str:
    """Accept an upper-case method token such as GET."""
    if not METHOD.match(method) or method != method.upper():
        raise ValueError(f"{method!r} is not an upper-case HTTP method such as GET")
    return method


@functools.cache
def _re2_options() -> re2.Options:
    import re2  # loaded with the first regex: a spec without one never needs the engine

    opts = re2.Options()
    opts.log_errors = False
    return opts


@functools.lru_cache(maxsize=4096)
def compile_regex(expr: str) -> re2._Regexp:
    """Compile with RE2, the syntax Go's regexp package accepts (cached: rules are re-checked
    against many requests)."""
    opts = _re2_options()
    import re2  # already loaded by _re2_options

    try:
        return re2.compile(expr, opts)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"invalid RE2 regular expression {expr!r}: {reason}") from None


_ANY_BYTE = re.compile(r"(?<!\\)(?:\\\\)*\\C")


def check_regex(expr: str) -> str:
    """Accept a regex Go's regexp (RE2 syntax) understands."""
    compile_regex(expr)
    if _ANY_BYTE.search(expr):
        raise ValueError(
            f"invalid RE2 regular expression {expr!r}: \\C (any byte) is RE2-only; Go's regexp, "
            "which the plugin uses, rejects it"
        )
    return expr


def check_k8s_name(name: str) -> str:
    """Accept a Kubernetes object name (DNS-1123 subdomain)."""
    if len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
        raise ValueError(
            f"{name!r} is not a valid Kubernetes name: lower-case letters, digits, '-' and '.', "
            "starting and ending with a letter or digit, at most 253 characters"
        )
    return name


def check_namespace(name: str) -> str:
    """Accept a Kubernetes namespace (DNS-1123 label)."""
    if len(name) > 63 or not DNS1123_LABEL.match(name):
        raise ValueError(
            f"{name!r} is not a valid namespace: lower-case letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters"
        )
    return name


def check_label_key(key: str) -> str:
    """Accept a label key as Kubernetes checks it: [prefix/]name."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        raise ValueError(f"label key prefix {prefix!r} must be a DNS subdomain such as example.com")
    if not name or len(name) > 63 or not LABEL_NAME.match(name):
        raise ValueError(
            f"label key {key!r} is invalid: the name part must be 1-63 characters of letters, "
            "digits, '-', '_' and '.', starting and ending with a letter or digit"
        )
    return key


def check_label_value(value: str) -> str:
    """Accept a label value as Kubernetes checks it (may be empty)."""
    if value and (len(value) > 63 or not LABEL_NAME.match(value)):
        raise ValueError(
            f"label value {value!r} is invalid: at most 63 characters of letters, digits, "
            "'-', '_' and '.', starting and ending with a letter or digit"
        )
    return value


def check_variant_name(name: str) -> str:
    """Accept a variant name: lower-case letters and digits, words joined by '-' or '_'."""
    if len(name) > 63 or not VARIANT_NAME.match(name):
        raise ValueError(
            f"{name!r} is not a variant name: lower-case letters and digits, words joined by "
            "'-' or '_', starting with a letter, at most 63 characters (e.g. cors)"
        )
    return name


HeaderName = Annotated[str, AfterValidator(check_header_name)]
RemoveName = Annotated[str, AfterValidator(check_remove_name)]
HeaderValue = Annotated[str, AfterValidator(check_header_value)]
Method = Annotated[str, AfterValidator(check_method)]
Regex = Annotated[str, AfterValidator(check_regex)]
K8sName = Annotated[str, AfterValidator(check_k8s_name)]
Namespace = Annotated[str, AfterValidator(check_namespace)]
LabelKey = Annotated[str, AfterValidator(check_label_key)]
LabelValue = Annotated[str, AfterValidator(check_label_value)]
VariantName = Annotated[str, AfterValidator(check_variant_name)]
PlainText = Annotated[str, AfterValidator(check_plain_text)]
