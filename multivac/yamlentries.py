"""The shape rules files share: YAML holding lists of entries, each with an `id`.

Failure rules (`rules:`) and test-result parsers (`tests:`) are read the same way: the
problems of every entry are collected (not only the first) so that `rules check` names
them all, each with its file, its id or position, and the reason; an entry may be
`disabled: true` to switch off a shipped entry of the same id.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml

from multivac.errors import MultivacError

T = TypeVar("T")

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

#: libyaml's loader when the wheel has it: about 10 times faster on the shipped catalog
YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def shipped_packs() -> list[str]:
    """The rules packs shipped in multivac/rules (`generic` is always loaded)."""
    folder = resources.files("multivac").joinpath("rules")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def read_source(source: str, error: type[MultivacError], *, flag: str = "") -> tuple[str, str]:
    """(text, name) of a rules file path or a shipped pack name; `error` (the reader's
    own error type) when it is neither or cannot be read, naming `flag` when the source
    came from one."""
    path = Path(source).expanduser()
    if path.is_file():
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise error(f"{source}: cannot read the rules file ({exc}).") from None
    packs = shipped_packs()
    if re.fullmatch(r"[a-z0-9_-]+", source) and source in packs:
        text = resources.files("multivac").joinpath(f"rules/{source}.yaml").read_text("utf-8")
        return text, f"pack {source}"
    names = ", ".join(p for p in packs if p != "generic")
    given = f"{flag} {source!r}" if flag else repr(source)
    raise error(f"{given} is neither a rules file nor a shipped pack ({names}).")


def load_yaml(text: str, name: str) -> tuple[Any, str | None]:
    """The document, or None and one sentence naming the file and the line."""
    try:
        return yaml.load(text, Loader=YAML_LOADER), None
    except yaml.YAMLError as exc:
        error = exc
    if YAML_LOADER is not yaml.SafeLoader:
        # libyaml places an error at the end of the stream on the line after the last;
        # the pure loader names the line a person would look at
        try:
            yaml.load(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            error = exc
    return None, _yaml_problem(error, name)


def _yaml_problem(exc: yaml.YAMLError, name: str) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}" if mark is not None else ""
    return f"{name}: not valid YAML{where}: {getattr(exc, 'problem', exc)}"


@dataclass
class Entries(Generic[T]):
    """What one file's list gave: the entries built, the problems, the ids disabled."""

    built: list[T] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    disabled: set[str] = field(default_factory=set)


def read_entries(
    entries: list[Any],
    name: str,
    noun: str,
    expected: str,
    build: Callable[[dict[str, Any], str], tuple[T | None, list[str]]],
) -> Entries[T]:
    """Build every entry of a list with `build(entry, name)`.

    `noun` names an entry in messages ("rule", "tests parser"), `expected` says what an
    entry must be ("a mapping with id, type and patterns"). An entry with problems is
    left out; an id seen twice in one file is a problem; `disabled: true` records the id.
    """
    out: Entries[T] = Entries()
    seen: set[str] = set()
    for index, entry in enumerate(entries, 1):
        label = f"{name}: {noun} #{index}"
        if not isinstance(entry, dict):
            out.problems.append(f"{label}: expected {expected}")
            continue
        entry_id = entry.get("id")
        if isinstance(entry_id, str):
            label = f"{name}: {noun} {entry_id!r} (#{index})"
        built, why = build(entry, name)
        if why:
            out.problems.extend(f"{label}: {reason}" for reason in why)
            continue
        if entry_id in seen:
            out.problems.append(f"{label}: duplicate id in this file")
            continue
        seen.add(str(entry_id))
        if entry.get("disabled") is True:
            out.disabled.add(str(entry_id))
        elif built is not None:
            out.built.append(built)
    return out


def strings(value: Any) -> list[str] | None:
    """A text or a list of texts as a list; None when it is something else."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def head_problems(entry: dict[str, Any], keys: Collection[str]) -> tuple[list[str], bool]:
    """What is wrong with the keys every entry shares (unknown keys, `id`, `disabled`),
    and whether the entry only switches off an entry of its id, so the rest of it need
    not be checked."""
    why: list[str] = []
    unknown = set(map(str, entry)) - set(keys)
    if unknown:
        why.append(f"unknown keys: {', '.join(sorted(unknown))}")
    entry_id = entry.get("id")
    if not isinstance(entry_id, str) or not _ID.match(entry_id):
        why.append("'id' must be a name of letters, digits, '.', '_' or '-'")
    if entry.get("disabled") is True and not why:
        return [], True
    if "disabled" in entry and not isinstance(entry["disabled"], bool):
        why.append("'disabled' must be true or false")
    return why, False
