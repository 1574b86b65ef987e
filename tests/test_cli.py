"""The `newsletter` command through click's CliRunner, on real workspaces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from newsletter.cli import cli


def run(runner: CliRunner, root: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, ["-w", str(root), *args], catch_exceptions=False)


def test_help_lists_the_commands(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("init", "new", "check", "build"):
        assert f"\n  {command} " in result.stdout


def test_check_on_the_sample_is_clean(runner: CliRunner, workspace: Path) -> None:
    result = run(runner, workspace, "check")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == "0 errors, 0 warnings\n"


def test_check_reports_every_problem_and_exits_1(runner: CliRunner, workspace: Path) -> None:
    path = workspace / "issues/daily/2025-05-13.md"
    text = path.read_text().replace(
        "    url: https://news.harbourledger.example/2025-05-13/pearl-air-profit",
        "    url: pearl-air",
    )
    path.write_text(text.replace("    summary: |\n      The deal", "    sumary: |\n      The deal"))
    result = run(runner, workspace, "check")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "issues/daily/2025-05-13.md:52: error: missing required key 'summary' in articles[2]\n"
        "issues/daily/2025-05-13.md:57: error: unknown key 'sumary' in articles[2] (did you mean 'summary'?)\n"
        "issues/daily/2025-05-13.md:61: error: articles[3].url: 'pearl-air' is not an absolute http(s) URL\n"
        "3 errors, 0 warnings\n"
    )


def test_check_prints_warnings_on_stdout_and_exits_0(runner: CliRunner, workspace: Path) -> None:
    path = workspace / "issues/daily/2025-05-16.md"
    path.write_text(path.read_text().replace("status: ready", "status: draft"))
    result = run(runner, workspace, "check", str(path))
    assert result.exit_code == 0
    assert (
        result.stdout
        == "issues/daily/2025-05-16.md:4: warning: status is draft: it cannot be sent until it is 'ready'\n"
    )
    assert result.stderr == "0 errors, 1 warning\n"


def test_build_says_where_the_output_is(runner: CliRunner, workspace: Path) -> None:
    result = run(runner, workspace, "build")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Built 7 issue(s), 0 unchanged, 46 file(s) written, 0 errors, 0 warnings.",
        "Output: build/ (open build/index.html)",
    ]
    assert (workspace / "build/index.html").is_file()
    again = run(runner, workspace, "build")
    assert (
        again.stdout.splitlines()[0]
        == "Built 0 issue(s), 7 unchanged, 0 file(s) written, 0 errors, 0 warnings."
    )


def test_a_failed_build_says_nothing_was_written_without_a_traceback(
    runner: CliRunner, workspace: Path
) -> None:
    path = workspace / "issues/daily/2025-05-12.md"
    path.write_text(path.read_text().replace("date: 2025-05-12", "date: 2025-02-30"))
    result = run(runner, workspace, "build")
    assert result.exit_code == 1
    assert result.stderr == (
        "issues/daily/2025-05-12.md:3: error: date: must be a date like 2025-05-14\n"
        "Error: 1 error, 0 warnings; nothing was written\n"
    )
    assert not (workspace / "build").exists()


def test_config_problems_are_all_reported_with_lines(runner: CliRunner, workspace: Path) -> None:
    config = workspace / "newsletter.toml"
    text = (
        config.read_text()
        .replace('cadence = "daily"', 'cadence = "dayly"')
        .replace('template = "weekly"', 'templat = "weekly"')
    )
    config.write_text(text.replace('timezone = "Asia/Hong_Kong"', 'timezone = "Asia/Hongkong_"'))
    result = run(runner, workspace, "check")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{config}:8: error: publication.timezone: unknown timezone 'Asia/Hongkong_' (use an IANA name like 'Europe/London')",
        f"{config}:17: error: newsletters.daily.cadence: must be 'daily' or 'weekly'",
        f"{config}:29: error: unknown key 'templat' in newsletters.weekly (did you mean 'template'?)",
        "3 errors, 0 warnings",
    ]


def test_a_toml_syntax_error_is_one_line(runner: CliRunner, workspace: Path) -> None:
    config = workspace / "newsletter.toml"
    config.write_text(
        config.read_text().replace('name = "The Harbour Ledger"', 'name = "The Harbour Ledger')
    )
    result = run(runner, workspace, "build")
    assert result.exit_code == 1
    assert result.stderr == f"Error: {config}:4: TOML syntax error: Illegal character '\\n'\n"


def test_outside_a_workspace_the_error_says_how_to_start_one(
    runner: CliRunner, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["build"])
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"Error: no newsletter.toml in {tmp_path.resolve()} or above (run 'newsletter init DIR' to start one)\n"
    )


def test_init_makes_a_workspace_that_builds(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "gazette"
    result = runner.invoke(cli, ["init", str(target)])
    assert result.exit_code == 0, result.output
    assert (target / "newsletter.toml").is_file() and (target / ".gitignore").is_file()
    assert (target / "templates/README.md").is_file()
    assert len(list((target / "issues/daily").glob("*.md"))) == 1
    built = run(runner, target, "build")
    assert built.exit_code == 0, built.output
    assert (target / "build/index.html").is_file()
    again = runner.invoke(cli, ["init", str(target)])
    assert again.exit_code == 1
    assert (
        again.stderr == f"Error: {target}: a workspace is already here (newsletter.toml exists)\n"
    )


def test_new_starts_a_draft_and_never_overwrites(runner: CliRunner, workspace: Path) -> None:
    result = run(runner, workspace, "new", "daily", "--date", "2025-05-19")
    assert result.exit_code == 0
    assert result.stdout == "created issues/daily/2025-05-19.md\n"
    path = workspace / "issues/daily/2025-05-19.md"
    text = path.read_text()
    assert "newsletter: daily\ndate: 2025-05-19\nstatus: draft\n" in text
    checked = run(runner, workspace, "check", str(path))
    assert checked.exit_code == 0  # a fresh skeleton has warnings (TODOs, draft) but no error
    assert (
        "warning: status is draft" in checked.stdout
        and "leftover placeholder 'TODO'" in checked.stdout
    )
    path.write_text(text + "\nEdited.\n")
    again = run(runner, workspace, "new", "daily", "--date", "2025-05-19")
    assert again.exit_code == 1
    assert again.stderr == "Error: issues/daily/2025-05-19.md: already exists; not overwriting it\n"
    assert path.read_text().endswith("Edited.\n")


def test_new_for_a_collected_newsletter_has_no_articles_to_fill(
    runner: CliRunner, workspace: Path
) -> None:
    assert run(runner, workspace, "new", "green", "--date", "2025-05-24").exit_code == 0
    text = (workspace / "issues/green/2025-05-24.md").read_text()
    assert "articles:" not in text
    assert (
        run(runner, workspace, "check", str(workspace / "issues/green/2025-05-24.md")).exit_code
        == 0
    )


def test_new_with_an_unknown_newsletter_or_bad_date(runner: CliRunner, workspace: Path) -> None:
    result = run(runner, workspace, "new", "dialy")
    assert result.exit_code == 1
    assert (
        result.stderr
        == "Error: no newsletter 'dialy' in newsletter.toml (configured: daily, green, weekly)\n"
    )
    bad = run(runner, workspace, "new", "daily", "--date", "19/05/2025")
    assert bad.exit_code == 2
    assert "'19/05/2025' is not a date like 2025-05-14" in bad.stderr


def test_an_output_folder_that_cannot_be_written_is_one_line(
    runner: CliRunner, workspace: Path
) -> None:
    blocker = workspace / "out"
    blocker.write_text("a file where the output folder should be")
    result = run(runner, workspace, "build", "--out", str(blocker / "site"))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {blocker}")
    assert "Traceback" not in result.output


# -- #11: every mistake in the editor's files is one line ----------------------------------


def test_a_billion_laughs_file_is_one_line_for_check_and_build(
    runner: CliRunner, workspace: Path
) -> None:
    from tests.build.test_issuefile import BILLION_LAUGHS

    (workspace / "issues/daily/2025-05-14.md").write_text(BILLION_LAUGHS)
    line = (
        "issues/daily/2025-05-14.md:2: error: YAML anchors (&name) and aliases (*name) "
        "are not allowed in issue files\n"
    )
    result = run(runner, workspace, "check")
    assert (result.exit_code, result.stderr) == (1, line + "1 error, 0 warnings\n")
    result = run(runner, workspace, "build")
    assert result.exit_code == 1
    assert result.stderr == line + "Error: 1 error, 0 warnings; nothing was written\n"
    assert not (workspace / "build").exists()


def test_special_files_in_issues_are_each_refused_with_one_line(
    runner: CliRunner, workspace: Path
) -> None:
    import os

    os.mkfifo(workspace / "issues/daily/2025-06-01.md")
    (workspace / "issues/daily/2025-06-02.md").symlink_to("/dev/zero")
    expected = (
        "issues/daily/2025-06-01.md: error: not a regular file\n"
        "issues/daily/2025-06-02.md: error: not a regular file\n"
    )
    result = run(runner, workspace, "check")
    assert (result.exit_code, result.stderr) == (1, expected + "2 errors, 0 warnings\n")
    result = run(runner, workspace, "build")
    assert result.exit_code == 1
    assert result.stderr == expected + "Error: 2 errors, 0 warnings; nothing was written\n"
    assert not (workspace / "build").exists()
    result = run(runner, workspace, "check", str(workspace / "issues/daily/2025-06-01.md"))
    assert (result.exit_code, result.stderr) == (
        1,
        "issues/daily/2025-06-01.md: error: not a regular file\n1 error, 0 warnings\n",
    )


def test_the_command_leaves_its_objects_out_of_the_last_collection(workspace: Path) -> None:
    """A process of its own (`python -m newsletter`) ends with the collector's view emptied
    (#16): what a build made is not walked once more at exit. Its output and status are
    those of the command."""
    code = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
        "from newsletter.cli import main\n"
        f"sys.argv = ['newsletter', '-w', {str(workspace)!r}, 'build']\n"
        "main()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Built 7 issue(s), 0 unchanged,")
    assert out.stdout.endswith("frozen True\n")
    module = subprocess.run(
        [sys.executable, "-m", "newsletter", "-w", str(workspace), "build"],
        capture_output=True,
        text=True,
    )
    assert (module.returncode, module.stdout.splitlines()[0]) == (
        0,
        "Built 0 issue(s), 7 unchanged, 0 file(s) written, 0 errors, 0 warnings.",
    )
