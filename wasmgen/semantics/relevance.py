"""Which rules can affect a header: the index that keeps deriving test traffic linear.

A rule's derived traffic checks the headers that rule touches. Their final values depend only
on the rules of the same phase that touch the same names (set, append, addIfAbsent, remove by
name or prefix, rename from or to, copyFromRequest to), on any request rule that may answer
locally (respond), and, through conditions on request headers, on the request rules that touch
those headers earlier. Response rules read the request as the client sent it and the upstream's
status, which no rule can change. Running the model over that closure instead of every rule
gives the same values for those headers, in time proportional to the closure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import field
from typing import Any

from wasmgen.records import record
from wasmgen.semantics.values import reads
from wasmgen.spec.conditions import blocks

Phase = str
PHASES: tuple[Phase, ...] = ("request", "response")


def touched_names(rule: dict[str, Any], phase: Phase) -> list[str]:
    """Header names (of the rule's own phase) whose values the rule writes or removes; a prefix
    remove names the header the traffic sampler seeds for it."""
    names: list[str] = []
    for op in ("set", "append", "addIfAbsent"):
        names += list(rule.get(op, {}))
    for name in rule.get("remove", []):
        names.append(name[:-1] + "wasmgen" if name.endswith("*") else name)
    for src, dst in rule.get("rename", {}).items():
        names += [src, dst]
    if phase == "response":
        names += list(rule.get("copyFromRequest", {}).values())
    names += edited_names(rule, phase)
    return list(dict.fromkeys(names))


def edited_names(rule: dict[str, Any], phase: Phase) -> list[str]:
    """Headers whose values a value-editing operation rewrites in place."""
    if "removeCookie" in rule:
        return ["cookie" if phase == "request" else "set-cookie"]
    if "dedupe" in rule or "rewrite" in rule:
        return list(rule.get("dedupe") or rule["rewrite"])
    if "setQuery" in rule or "removeQuery" in rule:
        return [":path"]
    return ["set-cookie"] if "cookieFlags" in rule else []


def _writes(rule: dict[str, Any], phase: Phase) -> tuple[set[str], list[str]]:
    """(exact names, prefixes) a rule changes in its phase's map."""
    exact: set[str] = set()
    prefixes: list[str] = []
    for op in ("set", "append", "addIfAbsent"):
        exact |= set(rule.get(op, {}))
    for name in rule.get("remove", []):
        if name.endswith("*"):
            prefixes.append(name[:-1])
        else:
            exact.add(name)
    for src, dst in rule.get("rename", {}).items():
        exact |= {src, dst}
    exact |= set(rule.get("copyFromRequest", {}).values())
    exact |= set(edited_names(rule, phase))
    return exact, prefixes


def _reads(rule: dict[str, Any]) -> set[str]:
    """Request header names a rule's conditions look at (cookie conditions read `cookie`)."""
    names: set[str] = set()
    for block in blocks(rule.get("when")):
        names |= {c["name"] for c in block.get("headers", [])}
        names |= {"cookie"} if "cookie" in block else set()
        names |= {":path"} if "query" in block else set()  # setQuery and removeQuery write it
    return names | reads(rule)[0]  # and what its values read (${request.header.x}, ...)


@record
class Rules:
    """A subset of the rules, in order, as a configuration, with the original indices."""

    config: dict[str, Any]
    index: dict[Phase, list[int]] = field(default_factory=dict)

    @classmethod
    def all(cls, config: dict[str, Any]) -> Rules:
        """Every rule."""
        return cls(config, {p: list(range(len(config.get(p, [])))) for p in PHASES})


class RuleIndex:
    """Header name -> the rules that change it, per phase; built once per configuration."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.exact: dict[Phase, dict[str, list[int]]] = {p: defaultdict(list) for p in PHASES}
        self.prefixes: dict[Phase, dict[str, list[int]]] = {p: defaultdict(list) for p in PHASES}
        for phase in PHASES:
            for i, rule in enumerate(config.get(phase, [])):
                exact, prefixes = _writes(rule, phase)
                for name in exact:
                    self.exact[phase][name].append(i)
                for prefix in prefixes:
                    self.prefixes[phase][prefix].append(i)
        self.responders = [i for i, r in enumerate(config.get("request", [])) if "respond" in r]

    def writers(self, phase: Phase, name: str) -> Iterable[int]:
        """Rules of a phase that change name."""
        yield from self.exact[phase].get(name, ())
        by_prefix = self.prefixes[phase]
        for end in range(len(name) + 1):  # every prefix of the name: linear in its length
            yield from by_prefix.get(name[:end], ())

    def relevant(self, phase: Phase, rule: int, names: list[str]) -> Rules:
        """The rules that decide the values of names (in phase) in traffic aimed at rule."""
        chosen: dict[Phase, set[int]] = {"request": set(), "response": set()}
        chosen[phase].add(rule)
        for name in names:
            chosen[phase].update(self.writers(phase, name))
        chosen["request"].update(self.responders)
        # Request rules' header conditions read the live map: pull in what writes those headers.
        pending = list(chosen["request"])
        while pending:
            current = self.config["request"][pending.pop()]
            for name in _reads(current):
                for writer in self.writers("request", name):
                    if writer not in chosen["request"]:
                        chosen["request"].add(writer)
                        pending.append(writer)
        # ${response.header.x} reads the map as earlier response rules left it.
        pending = list(chosen["response"])
        while pending:
            for name in reads(self.config["response"][pending.pop()])[1]:
                for writer in self.writers("response", name):
                    if writer not in chosen["response"]:
                        chosen["response"].add(writer)
                        pending.append(writer)
        subset: dict[str, Any] = {}
        index: dict[Phase, list[int]] = {}
        for p in PHASES:
            picked = sorted(chosen[p])
            index[p] = picked
            if picked:
                subset[p] = [self.config[p][i] for i in picked]
        return Rules(subset, index)
