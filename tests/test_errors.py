"""One hierarchy: every error the core raises is a NewsletterError, printed as the user sees it."""

from __future__ import annotations

from newsletter.errors import NewsletterError, RenderError
from newsletter.problems import Problem


def test_a_render_error_is_a_newsletter_error_that_prints_as_its_problem() -> None:
    """Joining the hierarchy must not change the line the editor sees."""
    problem = Problem("templates/email/daily.mjml.j2", 12, "error", "template error: boom")
    exc = RenderError(problem)
    assert isinstance(exc, NewsletterError) and exc.problem is problem
    assert str(exc) == "templates/email/daily.mjml.j2:12: error: template error: boom"
    assert str(RenderError(Problem("x.md", None, "error", "m"))) == "x.md: error: m"
