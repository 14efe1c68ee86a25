"""Recipes: a small, versioned TOML description of a restoration workflow.

A recipe is an ordered list of steps, each one layer of the result (see
:mod:`core.layer_stack`)::

    version = 1
    name = "portrait"
    description = "AI deblur, then Unsharp Mask 120 % / 1.5 px / 5 through the faces and eyes"

    [[step]]
    op = "deblur"          # the first pass
    method = "ai"          # "ai" (classical Auto when the AI pass is not installed) | "auto"
    strength = 50.0

    [[step]]
    op = "sharpen"         # Unsharp Mask, Photoshop semantics
    amount_pct = 120.0
    radius_px = 1.5
    threshold_levels = 5.0
    mask = "faces+eyes"    # where the layer shows (see MASK_SOURCES)
    feather_px = 6.0

Operations (``OPS``) and their keys, with units in the names (``docs/recipes.md`` has the
full table): ``deblur`` (``method``, ``mode``, ``strength``), ``sharpen`` (``amount_pct``,
``radius_px``, ``threshold_levels``, ``limit_halos``, ``halo_limit_pct``,
``luminance_only``, ``space``),
``clarity`` (a large-radius, low-amount unsharp mask on luminance), ``soften`` (Gaussian
``sigma_px`` in linear light; by default through the *inverted* subject mask, i.e. on the
background). Every step also takes ``name`` (the layer name), ``opacity_pct`` and the mask keys
``mask``, ``invert_mask``, ``grow_px``, ``feather_px``.

``mask`` is ``"none"`` (the whole layer shows), ``"black"`` (a black layer mask: nothing shows
until the user paints it in) or sources joined by ``+`` (their union): ``faces``, ``eyes``,
``subject`` (in-focus region of the blur map), ``detail`` (edges and texture), ``selection``
(supplied by the host, e.g. GIMP's selection).

Built-in presets live in ``core/presets/*.toml`` (package data): :func:`preset_names`,
:func:`load_preset`. :func:`parse_recipe` reads TOML text, :func:`recipe_to_toml` writes it
back (``parse_recipe(recipe_to_toml(r)) == r``). Reading a user's file is the caller's job
(:func:`core.io.read_recipe`); :func:`resolve_recipe` accepts a preset name or a path.
Errors are ``ValueError`` naming the key, the step, the line and the expected values.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "RECIPE_VERSION",
    "OPS",
    "MASK_SOURCES",
    "Step",
    "Recipe",
    "parse_recipe",
    "recipe_to_toml",
    "preset_names",
    "load_preset",
    "preset_toml",
    "resolve_recipe",
    "parse_mask_spec",
    "with_mask",
]

RECIPE_VERSION = 1
MASK_SOURCES = ("faces", "eyes", "subject", "detail", "selection")
_MASK_WORDS = ("none", "black")
_PRESET_FOLDER = "presets"  # inside the core package (package data)


# ----------------------------------------------------------------------------- schema
@dataclass(frozen=True)
class _Key:
    """One key of a step: its type, default and allowed values."""

    kind: type  # float, bool or str
    default: Any
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""

    def expected(self) -> str:
        if self.choices:
            return "one of " + ", ".join(f'"{c}"' for c in self.choices)
        if self.kind is bool:
            return "true or false"
        if self.kind is float:
            return f"a number in {self.lo:g}..{self.hi:g}{(' ' + self.unit) if self.unit else ''}"
        return "a string"


def _num(default: float, lo: float, hi: float, unit: str = "") -> _Key:
    return _Key(float, default, lo, hi, unit=unit)


def _common(mask: str, *, invert: bool = False, feather_px: float = 0.0) -> dict[str, _Key]:
    return {
        "name": _Key(str, ""),
        "opacity_pct": _num(100.0, 0, 100, "%"),
        "mask": _Key(str, mask),
        "invert_mask": _Key(bool, invert),
        "grow_px": _num(0.0, -500, 500, "px"),
        "feather_px": _num(feather_px, 0, 500, "px"),
    }


OPS: Mapping[str, Mapping[str, _Key]] = MappingProxyType(
    {
        "deblur": {
            "method": _Key(str, "ai", choices=("ai", "auto")),
            "mode": _Key(str, "auto", choices=("auto", "motion", "shake", "focus")),
            "strength": _num(50.0, 0, 100),
            **_common("none"),
        },
        "sharpen": {
            "amount_pct": _num(120.0, 0, 1000, "%"),
            "radius_px": _num(1.5, 0.1, 250, "px"),
            "threshold_levels": _num(5.0, 0, 255, "levels"),
            "limit_halos": _Key(bool, False),
            "halo_limit_pct": _num(20.0, 0, 100, "% of the local range"),
            "luminance_only": _Key(bool, False),
            "space": _Key(str, "encoded", choices=("encoded", "linear")),
            **_common("none"),
        },
        "clarity": {
            "amount_pct": _num(20.0, 0, 200, "%"),
            "radius_px": _num(25.0, 2, 250, "px"),
            "threshold_levels": _num(0.0, 0, 255, "levels"),
            **_common("none"),
        },
        "soften": {
            "sigma_px": _num(0.5, 0.1, 50, "px"),
            **_common("subject", invert=True, feather_px=8.0),
        },
    }
)
_LAYER_NAMES = {
    "deblur": "Deblurred",
    "sharpen": "Sharpened",
    "clarity": "Clarity",
    "soften": "Softened background",
}
_TOP_KEYS = ("version", "name", "description", "step")


@dataclass(frozen=True)
class Step:
    """One validated step: ``op`` and every key of that op (defaults filled in)."""

    op: str
    params: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    @property
    def layer_name(self) -> str:
        """The layer's name: ``name`` when given, else the op's default name."""
        return self.params["name"] or _LAYER_NAMES[self.op]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Step) and (self.op, dict(self.params)) == (
            other.op,
            dict(other.params),
        )

    def __hash__(self) -> int:
        return hash((self.op, tuple(sorted(self.params.items()))))


@dataclass(frozen=True)
class Recipe:
    """A validated recipe (see the module docstring for the format)."""

    name: str
    description: str
    steps: tuple[Step, ...]
    version: int = RECIPE_VERSION
    source: str = field(default="", compare=False)  # where it came from (preset name / path)

    def to_toml(self) -> str:
        """The recipe as TOML text (:func:`recipe_to_toml`)."""
        return recipe_to_toml(self)


# ----------------------------------------------------------------------------- parsing
def _line_of(text: str, step_index: int | None, key: str) -> int | None:
    """1-based line of ``key = ...`` (in the given ``[[step]]`` block), or None."""
    block = -1
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for i, line in enumerate(text.splitlines(), start=1):
        if re.match(r"^\s*\[\[\s*step\s*\]\]", line):
            block += 1
            continue
        if re.match(r"^\s*\[", line):
            block = 10**9  # another table: nothing of ours
            continue
        if (block == -1 if step_index is None else block == step_index) and pattern.match(line):
            return i
    return None


def _where(source: str, text: str, step_index: int | None, key: str) -> str:
    line = _line_of(text, step_index, key) if text else None
    place = source or "recipe"
    if line is not None:
        place += f", line {line}"
    if step_index is not None:
        place += f" (step {step_index + 1})"
    return place


def parse_mask_spec(spec: str) -> tuple[str, ...]:
    """Split a ``mask`` value into its sources: ``"faces+eyes"`` -> ``("faces", "eyes")``.

    ``"none"`` and ``"black"`` come back alone. Raises ValueError naming the allowed words.

    >>> parse_mask_spec("faces + eyes")
    ('faces', 'eyes')
    """
    words = tuple(w.strip().lower() for w in spec.split("+"))
    if len(words) == 1 and words[0] in _MASK_WORDS:
        return words
    bad = [w for w in words if w not in MASK_SOURCES]
    if bad or not words:
        msg = (
            f"mask {spec!r} is not understood ({', '.join(repr(b) for b in bad)}); expected "
            f'"none", "black", or sources joined by "+": {", ".join(MASK_SOURCES)} '
            '(e.g. "faces+eyes")'
        )
        raise ValueError(msg)
    return tuple(dict.fromkeys(words))


def _check_value(key: str, spec: _Key, value: Any, where: str) -> Any:
    if spec.kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            value = float(value)
            ok = math.isfinite(value) and spec.lo <= value <= spec.hi  # type: ignore[operator]
    elif spec.kind is bool:
        ok = isinstance(value, bool)
    else:
        ok = isinstance(value, str) and (not spec.choices or value in spec.choices)
    if not ok:
        msg = f"{where}: {key} must be {spec.expected()}, got {value!r}"
        raise ValueError(msg)
    if key == "mask":
        try:
            parse_mask_spec(value)
        except ValueError as exc:
            msg = f"{where}: {exc}"
            raise ValueError(msg) from None
    return value


def _parse_step(raw: Any, index: int, source: str, text: str) -> Step:
    if not isinstance(raw, dict):
        msg = f"{source or 'recipe'}: step {index + 1} must be a [[step]] table, got {raw!r}"
        raise ValueError(msg)
    op = raw.get("op")
    if op not in OPS:
        where = _where(source, text, index, "op")
        msg = f"{where}: op must be one of {', '.join(repr(o) for o in OPS)}, got {op!r}"
        raise ValueError(msg)
    schema = OPS[op]
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "op":
            continue
        if key not in schema:
            where = _where(source, text, index, key)
            msg = f"{where}: unknown key {key!r} for op {op!r}; expected keys: {', '.join(schema)}"
            raise ValueError(msg)
        params[key] = _check_value(key, schema[key], value, _where(source, text, index, key))
    ordered = {key: params.get(key, spec.default) for key, spec in schema.items()}
    return Step(op, MappingProxyType(ordered))


def parse_recipe(text: str, *, source: str = "") -> Recipe:
    """Read and validate a recipe from TOML text.

    Parameters
    ----------
    text : str
        TOML: ``version = 1``, ``name``, ``description`` and one or more ``[[step]]`` tables.
    source : str, optional
        Where the text came from (a path or preset name), used in error messages.

    Returns
    -------
    Recipe

    Raises
    ------
    ValueError
        Bad TOML (with its line), an unknown or missing key, a value out of range; the message
        names the key, the step, the line and the expected values.

    Examples
    --------
    >>> r = parse_recipe('version = 1\\nname = "x"\\n[[step]]\\nop = "sharpen"\\n')
    >>> r.steps[0]["amount_pct"]
    120.0
    """
    where = source or "recipe"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"{where}: not valid TOML: {exc}"
        raise ValueError(msg) from None
    for key in data:
        if key not in _TOP_KEYS:
            msg = (
                f"{_where(source, text, None, key)}: unknown key {key!r}; expected keys: "
                f"{', '.join(_TOP_KEYS)} (steps are [[step]] tables)"
            )
            raise ValueError(msg)
    version = data.get("version")
    if version != RECIPE_VERSION or isinstance(version, bool):
        msg = (
            f"{_where(source, text, None, 'version')}: version must be {RECIPE_VERSION} "
            f"(the recipe format this Clearshot reads), got {version!r}; add "
            f"'version = {RECIPE_VERSION}' at the top"
        )
        raise ValueError(msg)
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        msg = f"{_where(source, text, None, 'name')}: name must be a non-empty string, got {name!r}"
        raise ValueError(msg)
    description = data.get("description", "")
    if not isinstance(description, str):
        msg = f"{where}: description must be a string, got {description!r}"
        raise ValueError(msg)
    raw_steps = data.get("step")
    if not isinstance(raw_steps, list) or not raw_steps:
        msg = (
            f"{where}: a recipe needs at least one [[step]] table with an op "
            f"({', '.join(OPS)}); got {raw_steps!r}"
        )
        raise ValueError(msg)
    steps = tuple(_parse_step(s, i, source, text) for i, s in enumerate(raw_steps))
    return Recipe(name, description, steps, RECIPE_VERSION, source)


# ----------------------------------------------------------------------------- writing
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            msg = f"recipe values must be finite, got {value!r}"
            raise ValueError(msg)
        return repr(value)
    if isinstance(value, str):
        out = []
        for ch in value:
            if ch in ('"', "\\"):
                out.append("\\" + ch)
            elif ch == "\n":
                out.append("\\n")
            elif ch == "\t":
                out.append("\\t")
            elif ord(ch) < 0x20 or ord(ch) == 0x7F:
                out.append(f"\\u{ord(ch):04x}")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'
    msg = f"recipe values must be numbers, booleans or strings, got {type(value).__name__}"
    raise TypeError(msg)


def recipe_to_toml(recipe: Recipe) -> str:
    """Write a recipe as TOML (every key explicit), readable by :func:`parse_recipe`.

    >>> r = parse_recipe('version = 1\\nname = "x"\\n[[step]]\\nop = "soften"\\n')
    >>> parse_recipe(recipe_to_toml(r)) == r
    True
    """
    lines = [
        f"version = {recipe.version}",
        f"name = {_toml_value(recipe.name)}",
        f"description = {_toml_value(recipe.description)}",
    ]
    for step in recipe.steps:
        lines += ["", "[[step]]", f"op = {_toml_value(step.op)}"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in step.params.items()]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- presets
def preset_names() -> tuple[str, ...]:
    """Names of the built-in presets (``core/presets/*.toml``), sorted."""
    folder = resources.files("core").joinpath(_PRESET_FOLDER)
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml")))


def preset_toml(name: str) -> str:
    """The TOML text of a built-in preset. Raises ValueError listing the presets."""
    names = preset_names()
    if name not in names:
        msg = f"no preset named {name!r}; built-in presets: {', '.join(names)}"
        raise ValueError(msg)
    folder = resources.files("core").joinpath(_PRESET_FOLDER)
    return folder.joinpath(f"{name}.toml").read_text("utf-8")


def load_preset(name: str) -> Recipe:
    """A built-in preset as a :class:`Recipe` (``portrait``, ``old-photo``, ...)."""
    return parse_recipe(preset_toml(name), source=f"preset {name}")


def resolve_recipe(spec: str) -> Recipe:
    """A preset name, or the path of a ``.toml`` file (read by :func:`core.io.read_recipe`)."""
    if spec in preset_names():
        return load_preset(spec)
    if spec.lower().endswith(".toml") or "/" in spec or "\\" in spec:
        from .io import read_recipe

        return read_recipe(spec)
    msg = (
        f"recipe {spec!r} is neither a built-in preset ({', '.join(preset_names())}) nor a "
        ".toml file; give a preset name or the path of a recipe file"
    )
    raise ValueError(msg)


def with_mask(recipe: Recipe, mask: str, *, ops: tuple[str, ...] = ("sharpen",)) -> Recipe:
    """The recipe with ``mask`` on every step whose op is in ``ops`` (hosts' "mask" choice).

    Grow, feather and inversion of those steps are kept; other steps are unchanged.

    >>> r = with_mask(load_preset("portrait"), "black")
    >>> [(s.op, s["mask"]) for s in r.steps]
    [('deblur', 'none'), ('soften', 'faces'), ('sharpen', 'black')]
    """
    parse_mask_spec(mask)
    steps = tuple(
        Step(s.op, MappingProxyType({**s.params, "mask": mask})) if s.op in ops else s
        for s in recipe.steps
    )
    return Recipe(recipe.name, recipe.description, steps, recipe.version, recipe.source)
