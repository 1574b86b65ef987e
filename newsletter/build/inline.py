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
  nothing). While premailer is imported, `requests` is loaded through the standard
  library's `importlib.util.LazyLoader`: the real module, whose code runs on the first read
  of one of its attributes, which in a build never comes. Nothing else is deferred, and a
  process that imported requests before keeps it as it is.
- every email of an issue (and every issue of an archive) inlines the same CSS: the rules
  premailer derives from it are computed once per process, not once per email (the
  cssutils parse was two thirds of an inlining).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import logging
import re
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

DOCTYPE = "<!doctype html>"


class _LazyRequests(importlib.abc.MetaPathFinder):
    """Finds `requests` as usual, and has it executed on first use (see the docstring)."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != "requests":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


def _premailer_class() -> Any:
    import cssutils

    finder = _LazyRequests()
    sys.meta_path.insert(0, finder)
    try:
        import premailer.merge_style
        from premailer import Premailer
    finally:
        sys.meta_path.remove(finder)

    cssutils.log.setLevel(logging.CRITICAL)
    cssutils.log.raiseExceptions = False

    validating = premailer.merge_style.csstext_to_pairs

    def without_validation(csstext: str, validate: bool = False) -> Any:
        return validating(csstext, validate=False)

    if not hasattr(validating, "_unvalidated"):
        without_validation._lock = validating._lock  # type: ignore[attr-defined]  # it reads its own global
        without_validation._unvalidated = True  # type: ignore[attr-defined]
        premailer.merge_style.csstext_to_pairs = without_validation

    def no_fetch(url: str) -> tuple[None, None]:
        return None, None  # cssutils: "could not fetch", the @import stays as text

    rules_of: dict[tuple[str, int], tuple[list[Any], list[Any]]] = {}

    class NoFetchPremailer(Premailer):
        def _parse_style_rules(self, css_body: str, ruleset_index: int) -> Any:
            """premailer's rules for this CSS, derived once: our settings never change, and
            premailer only reads them (it copies the rules into its own list)."""
            key = (css_body, ruleset_index)
            if key not in rules_of:
                if len(rules_of) >= 64:  # CSS that varies from issue to issue: stay bounded
                    rules_of.clear()
                rules_of[key] = super()._parse_style_rules(css_body, ruleset_index)
            rules, leftover = rules_of[key]
            return list(rules), list(leftover)

        def _parse_css_string(self, css_body: str, validate: bool = True) -> Any:
            parser = cssutils.CSSParser(fetcher=no_fetch, validate=validate, raiseExceptions=False)
            return parser.parseString(css_body)

        def _load_external(self, url: str) -> str:
            return ""

    return NoFetchPremailer


_cls: Any = None
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
        cssutils_logging_level=logging.CRITICAL,
        cache_css_parsing=True,
    ).transform()
    out = out.strip()
    if out[:15].lower() == DOCTYPE:
        out = out[15:].lstrip()
    return f"{DOCTYPE}\n{out}\n"
