"""Template lookup (workspace first, then the package) and the errors a template can cause."""

from __future__ import annotations

import pytest

from newsletter.build.pipeline import check
from newsletter.workspace import Workspace


def override(ws: Workspace, name: str, text: str) -> None:
    path = ws.templates_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def one_issue(ws: Workspace) -> list[str]:
    return [p.format() for p in check(ws, [ws.root / "issues/daily/2025-05-14.md"])]


def test_the_sample_overrides_only_the_header_and_extends_the_default(ws: Workspace) -> None:
    from tests.build.test_render import render

    html = render(ws).files["free.html"]
    assert "Business news from the harbour to the world" in html  # the workspace's header
    assert "View in your browser" in html  # the default header it includes


def test_overriding_one_block_keeps_the_rest_of_the_design(ws: Workspace) -> None:
    from tests.build.test_render import render

    override(
        ws,
        "email/daily.mjml.j2",
        '{% extends "email/base.mjml.j2" %}\n{% block intro %}<mj-section><mj-column><mj-text>'
        "<p>Our own intro</p></mj-text></mj-column></mj-section>{% endblock %}\n",
    )
    html = render(ws).files["premium.html"]
    assert "Our own intro" in html
    assert "Good evening from the newsroom" not in html
    assert "China Export and Credit Insurance Corp." in html  # articles block untouched


def test_a_template_syntax_error_names_the_template_and_line(ws: Workspace) -> None:
    override(
        ws,
        "email/partials/footer.mjml.j2",
        "<mj-section>\n<mj-column>\n{% if web %}\n</mj-column>\n",
    )
    assert one_issue(ws) == [
        "templates/email/partials/footer.mjml.j2:4: error: template error: Unexpected end of template. "
        "Jinja was looking for the following tags: 'elif' or 'else' or 'endif'. The innermost block "
        "that needs to be closed is 'if'."
    ]


def test_an_undefined_variable_names_the_template_and_line(ws: Workspace) -> None:
    override(
        ws,
        "email/partials/footer.mjml.j2",
        "<mj-section>\n  <mj-column>\n    <mj-text>{{ pub.postal_adress }}</mj-text>\n  </mj-column>\n</mj-section>\n",
    )
    assert one_issue(ws) == [
        "templates/email/partials/footer.mjml.j2:3: error: template error: "
        "'newsletter.config.Publication object' has no attribute 'postal_adress'"
    ]


def test_an_mjml_error_is_reported_for_the_issue(ws: Workspace) -> None:
    override(
        ws,
        "email/partials/footer.mjml.j2",
        "<mj-section><mj-column><mj-text>unclosed</mj-column></mj-section>\n",
    )
    problems = one_issue(ws)
    assert len(problems) == 1
    assert problems[0].startswith(
        "issues/daily/2025-05-14.md: error: MJML error in template 'daily': "
    )


def test_a_missing_template_is_an_error(ws: Workspace) -> None:
    config = ws.config_path.read_text().replace('template = "daily"', 'template = "dailly"')
    ws.config_path.write_text(config)
    assert one_issue(Workspace(ws.root)) == [
        "templates: error: template not found: email/dailly.mjml.j2"
    ]


def test_text_from_the_issue_is_escaped_in_the_html(ws: Workspace) -> None:
    from tests.build.test_render import render

    path = ws.root / "issues/daily/2025-05-14.md"
    path.write_text(
        path.read_text()
        .replace('title: "Robotaxis get', 'title: "<script>alert(1)</script> & Robotaxis get')
        .replace("Three operators may now", "<img src=x onerror=alert(1)> Three operators may now")
    )
    html = render(ws).files["free.html"]
    assert "<script>alert(1)</script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Robotaxis get" in html
    assert "&lt;img src=x onerror=alert(1)&gt; Three operators" in html


def test_a_template_that_includes_itself_is_one_line(ws: Workspace) -> None:
    override(ws, "email/partials/footer.mjml.j2", '{% include "email/partials/footer.mjml.j2" %}\n')
    assert one_issue(ws) == [
        "templates/email/partials/footer.mjml.j2:1: error: template error: the template "
        "includes, extends or calls itself without end"
    ]


def test_a_template_that_extends_itself_is_one_line(ws: Workspace) -> None:
    override(ws, "email/daily.mjml.j2", '{% extends "email/daily.mjml.j2" %}\n')
    assert one_issue(ws) == [
        "templates/email/daily.mjml.j2:1: error: template error: the template "
        "includes, extends or calls itself without end"
    ]


def test_a_recursive_macro_is_one_line(ws: Workspace) -> None:
    override(
        ws,
        "email/partials/footer.mjml.j2",
        "{% macro loop(n) %}{{ loop(n + 1) }}{% endmacro %}\n{{ loop(0) }}\n",
    )
    assert one_issue(ws) == [
        "templates/email/partials/footer.mjml.j2:1: error: template error: the template "
        "includes, extends or calls itself without end"
    ]


def test_output_without_the_unsubscribe_link_is_never_written(ws: Workspace) -> None:
    """A footer a template (or a renderer that drops content) lost is an error: the law
    and the inboxes require the link in every email."""
    override(
        ws,
        "email/partials/footer.mjml.j2",
        "<mj-section><mj-column><mj-text><p>{{ pub.address }}</p></mj-text></mj-column>"
        "</mj-section>\n",
    )
    assert one_issue(ws) == [
        "issues/daily/2025-05-14.md: error: free.html has no unsubscribe link "
        "(%%unsubscribe_url%%): the footer is missing",
        "issues/daily/2025-05-14.md: error: premium.html has no unsubscribe link "
        "(%%unsubscribe_url%%): the footer is missing",
    ]


def test_an_edited_template_is_compiled_again(ws: Workspace) -> None:
    """Compiled templates are kept between processes (#16); an edit is never missed."""
    from newsletter.build.templating import environment

    override(ws, "email/greeting.txt.j2", "Hello {{ name }}\n")
    assert environment(ws.templates_dir).get_template("email/greeting.txt.j2").render(name="A") == (
        "Hello A\n"
    )
    override(ws, "email/greeting.txt.j2", "Goodbye {{ name }}\n")
    assert environment(ws.templates_dir).get_template("email/greeting.txt.j2").render(name="A") == (
        "Goodbye A\n"
    )


def test_a_cache_that_cannot_be_written_is_no_error(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jinja2

    from newsletter.build.templating import environment

    def full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(jinja2.FileSystemBytecodeCache, "dump_bytecode", full)
    override(ws, "email/other.txt.j2", "Fine {{ name }}\n")
    env = environment(ws.templates_dir)
    assert env.get_template("email/other.txt.j2").render(name="B") == "Fine B\n"
