"""CSS inlining with premailer, the only module that imports it (lazily: it is heavy).

Each setting below fixes something premailer does by default that breaks our email:
- `allow_network=False` and `_NoFetchPremailer`: premailer fetches <link> stylesheets, and
  cssutils follows `@import` (MJML's web fonts) even with allow_network=False. The build
  never touches the network.
- `strip_important=False`: keeps `!important` in the @media rules MJML relies on for the
  phone layout.
- the doctype: premailer drops a lowercase `<!doctype html>`; we put it back.
- cssutils logs dozens of warnings on stderr for email CSS (mso-*, vendor prefixes): silenced.
- validation: cssutils checks every inline style against its CSS profiles, compiling some
  150 regexes on first use (0.4 s of a 0.9 s one-issue build) only to warn about mso-*
  properties. premailer's `disable_validation` skips it for the stylesheet but not for the
  styles already on each element (`merge_style.csstext_to_pairs`), so we turn it off there.
  `align_floating_images` is off too: it parses every <img> style, and we float no image.
- `disable_basic_attributes`: premailer copies the width, height and background of every
  element a rule matches into HTML attributes, turning a story image's width="552" (what
  Outlook for Windows sizes it by) into width="100%", and adding bgcolor to an <img>.

What keeps inlining cheap:
- premailer imports `requests` at the top (60-70 ms with urllib3, charset detection and
  cookies) for fetching remote stylesheets, which we never do (`_load_external` returns
  nothing), and `cssutils` (30-40 ms with urllib.request, http.client and ssl), which it
  needs only to parse CSS text. While premailer is imported, each is a stand-in module
  (`_Deferred`) that imports the real one on the first read of one of its attributes: for
  requests that never comes in a build; for cssutils it comes only when some CSS text has
  not been parsed before (below). The stand-ins are premailer's alone: any other `import`
  gets the real module, and a process that imported either before keeps it as it is.
  (`importlib.util.LazyLoader` does not do: in Python 3.11 a second `import` of a lazy
  module, premailer's merge_style after premailer, runs it.)
- every email of an issue (and every issue of an archive, and every build after it)
  inlines the same CSS, and MJML writes the same inline styles on the same components:
  what premailer derives from each CSS text with cssutils (the rules of a stylesheet, the
  (property, value) pairs of a style attribute) is plain strings, computed once and kept,
  in memory and in a file of this user's private cache folder in the temporary directory
  (as Jinja keeps its compiled templates, see `templating`), so that a fresh build whose
  CSS has been seen before never runs cssutils (its import and first parse were a fifth of
  a one-issue build). The file is named after this module, premailer and cssutils (their
  files' size and time), so a change to any of them starts it afresh; an unreadable or
  malformed file, or a folder someone else could write to, is simply not used. A
  stylesheet whose leftovers are cssutils objects (an @media rule) is kept in memory only.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import logging
import os
import re
import stat
import sys
import tempfile
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

DOCTYPE = "<!doctype html>"
DEFERRED = ("requests", "cssutils")
MAX_RULES = 64  # stylesheets kept (CSS that varies from issue to issue: stay bounded)
MAX_PAIRS = 4096  # style attributes kept

Rules = tuple[list[Any], list[Any]]  # premailer's (rules, leftover) of one stylesheet
Pairs = list[tuple[str, str]]  # premailer's (property, value) pairs of one style attribute


class _Deferred(ModuleType):
    """Stands in for a `DEFERRED` module while premailer is imported (see the docstring):
    premailer keeps it as its global, and the first read of one of its attributes imports
    the real module, which it then reads through. It is in `sys.modules` only during
    premailer's import, so any other `import` gets the real module."""

    def __getattr__(self, attr: str) -> Any:  # only for what the stand-in itself lacks
        if attr.startswith("__"):
            raise AttributeError(attr)
        real = (
            _cssutils() if self.__name__ == "cssutils" else importlib.import_module(self.__name__)
        )
        return getattr(real, attr)


class _Derived:
    """What premailer derived from CSS texts with cssutils, kept in memory and, when
    `path` is given, in that file between processes (see the docstring)."""

    def __init__(self, path: Path | None):
        self.path = path
        self.rules: dict[str, Rules] = {}
        self.kept: set[str] = set()  # the rules that are plain strings, for the file
        self.pairs: dict[str, Pairs] = {}
        self.dirty = False
        self.lock = threading.Lock()  # the web service renders in threads
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_bytes())
            rules = {
                key: (
                    [
                        (tuple(int(n) for n in spec), str(sel), str(bulk))
                        for spec, sel, bulk in rules
                    ],
                    [(str(sel), str(bulk)) for sel, bulk in leftover],
                )
                for key, (rules, leftover) in data["rules"].items()
            }
            pairs = {
                str(text): [(str(k), str(v)) for k, v in found]
                for text, found in data["pairs"].items()
            }
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return  # none yet, or not ours to trust: start afresh
        self.rules, self.pairs, self.kept = rules, pairs, set(rules)

    def add_rules(self, key: str, found: Rules) -> None:
        with self.lock:
            if len(self.rules) >= MAX_RULES:
                self.rules.clear()
                self.kept.clear()
            self.rules[key] = found
            if all(isinstance(item, tuple) for item in found[1]):
                self.kept.add(key)
                self.dirty = True

    def add_pairs(self, text: str, found: Pairs) -> None:
        with self.lock:
            if len(self.pairs) >= MAX_PAIRS:
                self.pairs.clear()
            self.pairs[text] = found
            self.dirty = True

    def save(self) -> None:
        """Write the file if anything was added; a cache that cannot be written is no error."""
        if not self.dirty or self.path is None:
            return
        with self.lock:
            self.dirty = False
            data = {
                "rules": {key: self.rules[key] for key in self.kept},
                "pairs": dict(self.pairs),
            }
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        first = not self.path.exists()
        try:
            tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, self.path)
            if first:  # the files of earlier versions of premailer, cssutils or this module
                for old in self.path.parent.glob("premailer-*.json"):
                    if old != self.path:
                        old.unlink(missing_ok=True)
        except OSError:
            tmp.unlink(missing_ok=True)


def _cache_dir() -> Path | None:
    """This user's private folder in the temporary directory (0700, owned by this user),
    made the way Jinja makes its own; None where there is none to trust."""
    if not hasattr(os, "getuid"):
        return None
    folder = Path(tempfile.gettempdir()) / f"newsletter-cache-{os.getuid()}"
    try:
        folder.mkdir(mode=stat.S_IRWXU, exist_ok=True)
        info = folder.lstat()
    except OSError:
        return None
    if (
        info.st_uid != os.getuid()
        or not stat.S_ISDIR(info.st_mode)
        or stat.S_IMODE(info.st_mode) != stat.S_IRWXU
    ):
        return None
    return folder


def _cache_file(origins: list[str]) -> Path | None:
    folder = _cache_dir()
    if folder is None:
        return None
    h = hashlib.sha256()
    for origin in [__file__, *origins]:
        try:
            info = os.stat(origin)
        except OSError:
            return None
        h.update(f"{origin}\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
    return folder / f"premailer-{h.hexdigest()[:32]}.json"


_real_lock = threading.Lock()
_real_ready = False


def _cssutils() -> Any:
    """cssutils (imported now if it was not yet), with its logging silenced."""
    global _real_ready
    import cssutils

    with _real_lock:  # the web service renders in threads
        if not _real_ready:
            cssutils.log.setLevel(logging.CRITICAL)
            cssutils.log.raiseExceptions = False
            _real_ready = True
    return cssutils


def _premailer_class() -> Any:
    stand_ins = [name for name in DEFERRED if name not in sys.modules]
    for name in stand_ins:
        sys.modules[name] = _Deferred(name)
    try:
        import premailer.merge_style
        import premailer.premailer
        from premailer import Premailer
    finally:
        for name in stand_ins:
            if isinstance(sys.modules.get(name), _Deferred):
                del sys.modules[name]

    origins = [_origin("cssutils"), premailer.premailer.__file__]
    global _derived
    _derived = _Derived(_cache_file(origins))
    derived = _derived

    validating = premailer.merge_style.csstext_to_pairs
    validating = getattr(validating, "_validating", validating)

    def pairs_of(csstext: str, validate: bool = False) -> Pairs:
        """premailer's pairs, never validated: see the docstring."""
        found = derived.pairs.get(csstext)
        if found is None:
            _cssutils()
            found = validating(csstext, validate=False)
            derived.add_pairs(csstext, found)
        return found

    pairs_of._lock = validating._lock  # type: ignore[attr-defined]  # it reads its own global
    pairs_of._validating = validating  # type: ignore[attr-defined]
    premailer.merge_style.csstext_to_pairs = pairs_of  # the element's own style
    premailer.premailer.csstext_to_pairs = pairs_of  # each rule's

    def no_fetch(url: str) -> tuple[None, None]:
        return None, None  # cssutils: "could not fetch", the @import stays as text

    class NoFetchPremailer(Premailer):
        def _parse_style_rules(self, css_body: str, ruleset_index: int) -> Any:
            """premailer's rules for this CSS, derived once: our settings never change, and
            premailer only reads them (it copies the rules into its own list)."""
            key = f"{hashlib.sha256(css_body.encode()).hexdigest()}:{ruleset_index}"
            found = derived.rules.get(key)
            if found is None:
                _cssutils()
                found = super()._parse_style_rules(css_body, ruleset_index)
                derived.add_rules(key, found)
            rules, leftover = found
            return list(rules), list(leftover)

        def _parse_css_string(self, css_body: str, validate: bool = True) -> Any:
            parser = _cssutils().CSSParser(
                fetcher=no_fetch, validate=validate, raiseExceptions=False
            )
            return parser.parseString(css_body)

        def _load_external(self, url: str) -> str:
            return ""

    return NoFetchPremailer


def _origin(name: str) -> str:
    """The file a module is (or would be) imported from, without importing it."""
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None) if module else importlib.util.find_spec(name)
    return (spec.origin or "") if spec else ""


_cls: Any = None
_derived: _Derived | None = None
_MJ_INLINE = re.compile(r'<mj-style\s+inline="inline"\s*>(.*?)</mj-style>', re.S)


def inline_styles(mjml_source: str) -> list[str]:
    """The CSS of each `<mj-style inline="inline">`: the only CSS that MJML inlines."""
    return [css.strip() for css in _MJ_INLINE.findall(mjml_source)]


def inline_css(html: str, css: list[str]) -> str:
    """Inline `css` (from `inline_styles`) into the compiled HTML, as MJML itself would.

    mjml-python leaves that CSS in a <style> in the head: we take it out and give it to
    premailer, and keep every other <style> (MJML's resets, media queries) as it is.
    """
    global _cls
    if _cls is None:
        _cls = _premailer_class()
    body = html[15:] if html[:15].lower() == DOCTYPE else html
    for block in css:
        body = body.replace(f'<style type="text/css">{block}</style>', "", 1)
    body = body.replace("<style", '<style data-premailer="ignore"')
    out = _cls(
        body,
        css_text=css,
        base_url=None,
        disable_link_rewrites=True,
        allow_network=False,
        allow_loading_external_files=False,
        strip_important=False,
        keep_style_tags=False,
        remove_classes=False,
        disable_validation=True,
        align_floating_images=False,
        disable_basic_attributes=["width", "height", "bgcolor"],
        cache_css_parsing=True,
    ).transform()
    if _derived is not None:
        _derived.save()
    out = out.strip()
    if out[:15].lower() == DOCTYPE:
        out = out[15:].lstrip()
    return f"{DOCTYPE}\n{out}\n"
