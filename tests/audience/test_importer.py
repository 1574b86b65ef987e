"""Importing subscriber CSV files: the export formats, consent kept, suppression wins, one
transaction, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.audience import importer as importer_module
from newsletter.audience.importer import Importer, ImportReport
from newsletter.audience.subscribers import add, forget, listing, remove
from newsletter.errors import ImportFileError
from newsletter.store import Store
from newsletter.store import people as q

NEWSLETTERS = {"daily", "weekly", "green"}


def write(tmp_path: Path, text: str, name: str = "list.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def run(store: Store, path: Path, **options: object) -> ImportReport:
    settings = {"newsletter": "daily", **options}
    dry_run = bool(settings.pop("dry_run", False))
    rejects = settings.pop("rejects", None)
    return Importer(store, NEWSLETTERS, **settings).run(path, dry_run=dry_run, rejects=rejects)  # type: ignore[arg-type]


def lists(store: Store) -> dict[str, tuple[str, str, str | None, dict[str, str]]]:
    return {e.email: (e.name, e.tier, e.suppressed, e.newsletters) for e in listing(store)}


def recipients(store: Store, newsletter: str = "daily") -> list[str]:
    with store.begin() as conn:
        return [r.email for r in q.recipients(conn, newsletter)]


def counts(report: ImportReport) -> tuple[int, int, int, int, int, int]:
    return (
        report.added,
        report.updated,
        report.unchanged,
        report.skipped,
        len(report.rejected),
        report.suppressed,
    )


# -- the formats --------------------------------------------------------------------------


def test_mailchimp_subscribed_export(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        (
            '"Email Address","First Name","Last Name","MEMBER_RATING","OPTIN_TIME","TAGS"\n'
            '"jane@example.com","Jane","Doe","2","2024-01-02 10:00:00",""\n'
            '"kwan@example.hk","Zoë","Kwan","5","2024-02-03 11:00:00","vip"\n'
        ),
    )
    assert counts(run(store, path)) == (2, 0, 0, 0, 0, 0)
    assert lists(store) == {
        "jane@example.com": ("Jane Doe", "free", None, {"daily": "subscribed"}),
        "kwan@example.hk": ("Zoë Kwan", "free", None, {"daily": "subscribed"}),
    }


def test_mailchimp_unsubscribed_and_cleaned_exports_are_not_subscribers(
    store: Store, tmp_path: Path
) -> None:
    unsub = write(
        tmp_path,
        (
            "Email Address,First Name,Last Name,UNSUB_TIME,UNSUB_CAMPAIGN_TITLE,UNSUB_REASON\n"
            "left@example.com,Left,Us,2024-05-01 09:00:00,Daily 42,No longer interested\n"
        ),
        "unsubscribed_members_export.csv",
    )
    cleaned = write(
        tmp_path,
        (
            "Email Address,First Name,Last Name,CLEAN_TIME,CLEAN_CAMPAIGN_TITLE\n"
            "bounced@example.com,Bo,Unced,2024-05-02 09:00:00,Daily 43\n"
        ),
        "cleaned_members_export.csv",
    )
    assert counts(run(store, unsub)) == (1, 0, 0, 0, 0, 0)
    assert counts(run(store, cleaned)) == (0, 0, 0, 0, 0, 1)
    assert lists(store) == {
        "left@example.com": ("Left Us", "free", None, {"daily": "unsubscribed"}),
        "bounced@example.com": ("Bo Unced", "free", "bounce", {"daily": "unsubscribed"}),
    }
    assert recipients(store) == []
    # the cleaned address is suppressed: a later ordinary import cannot add it
    again = write(tmp_path, "email\nbounced@example.com\n")
    report = run(store, again, resubscribe=True)
    assert counts(report) == (0, 0, 0, 1, 0, 0)
    assert report.skipped_rows[0].reason == "suppressed (bounce)"


def test_substack_export_tiers_and_disabled_rows(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        (
            "email,active_subscription,expiry,plan,email_disabled,created_at,first_payment_at\n"
            "free@example.com,false,,,false,2024-01-15T10:00:00.000Z,\n"
            "paid@example.com,true,2026-12-01T00:00:00.000Z,yearly,false,2024-02-01T10:00:00.000Z,2024-02-01T10:00:00.000Z\n"
            "quiet@example.com,false,,,true,2024-03-01T10:00:00.000Z,\n"
        ),
    )
    assert counts(run(store, path)) == (3, 0, 0, 0, 0, 0)
    assert lists(store) == {
        "free@example.com": ("", "free", None, {"daily": "subscribed"}),
        "paid@example.com": ("", "premium", None, {"daily": "subscribed"}),
        "quiet@example.com": ("", "free", None, {"daily": "unsubscribed"}),
    }
    assert recipients(store) == ["free@example.com", "paid@example.com"]


def test_listmonk_export_statuses_and_attributes(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        (
            "uuid,email,name,attributes,status,created_at,updated_at\n"
            '1f0c,ana@example.com,Ana,"{""city"": ""Lisbon""}",enabled,2024-01-01,2024-01-01\n'
            "2a9d,off@example.com,Off,{},disabled,2024-01-01,2024-01-01\n"
            "3b7e,spam@example.com,Spam,{},blocklisted,2024-01-01,2024-01-01\n"
        ),
    )
    assert counts(run(store, path)) == (2, 0, 0, 0, 0, 1)
    assert lists(store) == {
        "ana@example.com": ("Ana", "free", None, {"daily": "subscribed"}),
        "off@example.com": ("Off", "free", None, {"daily": "unsubscribed"}),
        "spam@example.com": ("Spam", "free", "blocklisted", {"daily": "unsubscribed"}),
    }
    with store.begin() as conn:
        assert q.by_key(conn, "ana@example.com").attributes == {"city": "Lisbon"}  # type: ignore[union-attr]
        from newsletter.audience.addresses import parse

        assert q.suppressed(conn, [parse("spam@example.com").hash]) == {
            parse("spam@example.com").hash: "blocklisted"
        }


def test_a_subscribed_false_column_is_honoured(store: Store, tmp_path: Path) -> None:
    """A widely used platform was reported for importing subscribed=false rows as subscribed."""
    path = write(tmp_path, "email,subscribed\nyes@example.com,true\nno@example.com,false\n")
    run(store, path)
    assert recipients(store) == ["yes@example.com"]
    assert lists(store)["no@example.com"][3] == {"daily": "unsubscribed"}


def test_utf8_with_a_bom_and_a_name_column(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "Email,Name\nzoe@example.com,Zoë Kwan\n", encoding="utf-8-sig")
    assert counts(run(store, path)) == (1, 0, 0, 0, 0, 0)
    assert lists(store) == {"zoe@example.com": ("Zoë Kwan", "free", None, {"daily": "subscribed"})}


# -- merging and consent ------------------------------------------------------------------


def test_duplicates_in_the_file_and_against_the_store_are_merged(
    store: Store, tmp_path: Path
) -> None:
    add(store, "Jane@example.com", "daily", name="Jane")
    path = write(
        tmp_path,
        (
            "email,name,tier\n"
            "jane@example.com,jane lower,free\n"  # the same subscriber: case is no matter
            "Jane@EXAMPLE.COM,Jane Doe,premium\n"  # the same subscriber as the store's
            "new@example.com,New,\n"
            "NEW@example.com,,\n"
            "new@Example.com,New Person,\n"
        ),
    )
    report = run(store, path)
    assert counts(report) == (1, 2, 2, 0, 0, 0)  # later rows of one address: updated, merged
    people = lists(store)  # each stored as first given
    assert people == {
        "Jane@example.com": ("Jane Doe", "premium", None, {"daily": "subscribed"}),
        "new@example.com": ("New Person", "free", None, {"daily": "subscribed"}),
    }


def test_an_unsubscribed_person_is_not_resubscribed_unless_asked(
    store: Store, tmp_path: Path
) -> None:
    add(store, "left@example.com", "daily")
    remove(store, "left@example.com")
    path = write(tmp_path, "email\nleft@example.com\n")
    report = run(store, path)
    assert counts(report) == (0, 0, 0, 1, 0, 0)
    assert report.skipped_rows[0].reason == "unsubscribed from daily (use --resubscribe)"
    assert recipients(store) == []
    assert counts(run(store, path, resubscribe=True)) == (0, 1, 0, 0, 0, 0)
    assert recipients(store) == ["left@example.com"]
    with store.begin() as conn:
        from newsletter.audience.addresses import parse

        actions = [
            (e["action"], e["method"]) for e in q.history(conn, parse("left@example.com").hash)
        ]
    assert actions == [
        ("subscribed", "command"),
        ("unsubscribed", "command"),
        ("subscribed", "import"),
    ]


def test_a_forgotten_address_never_comes_back(store: Store, tmp_path: Path) -> None:
    add(store, "gone@example.com", "daily", name="Gone")
    forget(store, "gone@example.com")
    assert lists(store) == {}
    report = run(
        store, write(tmp_path, "email,name\ngone@example.com,Gone Again\n"), resubscribe=True
    )
    assert counts(report) == (0, 0, 0, 1, 0, 0)
    assert report.skipped_rows[0].reason == "suppressed (erased)"
    assert lists(store) == {}


def test_tier_option_applies_to_rows_without_a_tier(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "email,tier\na@example.com,\nb@example.com,free\n")
    run(store, path, tier="premium")
    assert {k: v[1] for k, v in lists(store).items()} == {
        "a@example.com": "premium",
        "b@example.com": "free",
    }


def test_a_dry_run_reports_and_saves_nothing(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "email\na@example.com\nb@example.com\nnot-an-address\n")
    report = run(store, path, dry_run=True)
    assert counts(report) == (2, 0, 0, 0, 1, 0)
    assert report.summary().endswith("(dry run: nothing would be saved)")
    assert lists(store) == {}


def test_batches_see_each_other(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer_module, "BATCH", 2)
    rows = "".join(f"user{i % 7}@example.com,Name {i}\n" for i in range(20))
    report = run(store, write(tmp_path, "email,name\n" + rows))
    assert report.added == 7 and report.added + report.updated + report.unchanged == 20
    assert len(lists(store)) == 7


# -- one transaction, bad input -----------------------------------------------------------


def test_a_crash_in_the_middle_leaves_the_database_as_it_was(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(store, "before@example.com", "daily")
    monkeypatch.setattr(importer_module, "BATCH", 3)
    calls = {"n": 0}
    real = q.record

    def crash_on_third_batch(conn, events):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("power cut")
        real(conn, events)

    monkeypatch.setattr(q, "record", crash_on_third_batch)
    path = write(tmp_path, "email\n" + "".join(f"n{i}@example.com\n" for i in range(10)))
    with pytest.raises(RuntimeError, match="power cut"):
        run(store, path)
    assert list(lists(store)) == ["before@example.com"]


@pytest.mark.parametrize(
    ("content", "message", "line"),
    [
        (
            b"email,name\nok@example.com,Ok\n\xff\xfe\x89PNG junk\n",
            "not UTF-8 text (save the file as CSV UTF-8)",
            3,
        ),
        (
            b"name,phone\nJane,123\n",
            "no email column in the header (expected one of 'email', 'email address', 'e-mail')",
            1,
        ),
        (b"", "the file is empty: the first row must name the columns", None),
        (
            b'email,name\nok@example.com,Ok\nx@example.com,"' + b"y" * 10_000_000 + b'"\n',
            "malformed CSV: field larger than field limit (131072)",
            3,
        ),
        (
            b"email,name\nok@example.com,O\x00k\n",
            "malformed CSV: a NUL byte: this looks like a binary file, not CSV",
            2,
        ),
    ],
    ids=["binary-junk", "no-email-column", "empty", "10MB-field", "nul-byte"],
)
def test_a_file_that_cannot_be_read_stops_and_changes_nothing(
    store: Store, tmp_path: Path, content: bytes, message: str, line: int | None
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(ImportFileError) as caught:
        run(store, path)
    assert caught.value.message == message
    assert caught.value.line == line
    assert lists(store) == {}


def test_bad_rows_are_reported_and_the_good_ones_imported(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        (
            "email,name,tier,newsletter\n"
            "good@example.com,Good,free,daily\n"
            "not-an-address,Bad,free,daily\n"
            "ragged@example.com,Too,many,daily,fields\n"
            "tier@example.com,T,gold,daily\n"
            "nl@example.com,N,free,monthly\n"
            ",,,\n"
            "fine@example.com,Fine,premium,weekly\n"
        ),
    )
    rejects = tmp_path / "rejects.csv"
    report = run(store, path, newsletter=None, rejects=rejects)
    assert [(r.line, r.email, r.reason) for r in report.rejected] == [
        (3, "not-an-address", "An email address must have an @-sign."),
        (4, "ragged@example.com", "has 5 fields, the header has 4"),
        (5, "tier@example.com", "tier 'gold' is not free or premium"),
        (6, "nl@example.com", "newsletter 'monthly' is not configured"),
    ]
    assert sorted(lists(store)) == ["fine@example.com", "good@example.com"]
    assert rejects.read_text().splitlines() == [
        "line,email,reason",
        "3,not-an-address,An email address must have an @-sign.",
        '4,ragged@example.com,"has 5 fields, the header has 4"',
        "5,tier@example.com,tier 'gold' is not free or premium",
        "6,nl@example.com,newsletter 'monthly' is not configured",
    ]


def test_recipients_are_subscribed_unsuppressed_and_streamed(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email,status\n"
        + "".join(
            f"r{i:04d}@example.com,{'unsubscribed' if i % 10 == 0 else 'subscribed'}\n"
            for i in range(2500)
        )
        + "p@example.com,pending\n",
    )
    run(store, path)
    forget(store, "r0001@example.com")
    with store.begin() as conn:
        from newsletter.store.schema import subscribers

        hashes = conn.execute(
            subscribers.select().where(subscribers.c.email == "r0002@example.com")
        ).first()
        q.suppress(
            conn,
            [q.Suppression(hashes.email_hash, "complaint", "test", hashes.created_at)],
        )  # type: ignore[union-attr]
        stream = q.recipients(conn, "daily", batch=100)
        first = next(stream)
        got = [first.email, *(r.email for r in stream)]
    expected = [f"r{i:04d}@example.com" for i in range(2500) if i % 10 and i not in (1, 2)]
    assert got == expected


# -- #11: the editor's files -----------------------------------------------------------------


def test_deeply_nested_attributes_reject_the_row_not_the_import(
    store: Store, tmp_path: Path
) -> None:
    deep = "[" * 50_000 + "]" * 50_000
    path = write(
        tmp_path,
        f'email,attributes\ndeep@example.com,"{deep}"\nok@example.com,"{{""city"": ""Oslo""}}"\n',
    )
    report = run(store, path)
    assert [(r.line, r.reason) for r in report.rejected] == [
        (2, "attributes is nested more than 20 levels deep")
    ]
    assert sorted(lists(store)) == ["ok@example.com"]


def test_attributes_nested_just_too_deep_for_the_store_are_rejected(
    store: Store, tmp_path: Path
) -> None:
    deep = '{""a"": ' * 21 + "1" + "}" * 21
    path = write(tmp_path, f'email,attributes\ndeep@example.com,"{deep}"\n')
    report = run(store, path)
    assert [(r.line, r.reason) for r in report.rejected] == [
        (2, "attributes is nested more than 20 levels deep")
    ]


def test_rejected_rows_are_written_with_formula_cells_neutralised(
    store: Store, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        'email,name,tier\n=HYPERLINK("http://evil.example"),A,free\n+1-555,B,free\n'
        "@SUM(A1),C,free\nx@example.com,D,gold\n",
    )
    rejects = tmp_path / "rejects.csv"
    run(store, path, rejects=rejects)
    import csv

    with rejects.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert [row[1] for row in rows[1:]] == [
        '\'=HYPERLINK("http://evil.example")',
        "'+1-555",
        "'@SUM(A1)",
        "x@example.com",
    ]
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


@pytest.mark.parametrize(
    "text", ["email,name\n", "email,name\n\n,\n  \n"], ids=["no-rows", "blank"]
)
def test_a_file_with_a_header_and_no_rows_is_an_error(
    store: Store, tmp_path: Path, text: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ImportFileError) as caught:
        run(store, path)
    assert str(caught.value) == f"{path}: the file has a header and no rows: nothing to import"


# -- a bulk load into an empty database (#16) ----------------------------------------------


def indexes(store: Store) -> dict[str, list[str]]:
    """Each index of the tables an import writes, and its columns, as the database has it."""
    from sqlalchemy import inspect

    with store.begin() as conn:
        found = inspect(conn)
        return {
            str(i["name"]): [str(c) for c in i["column_names"]]
            for table in ("subscribers", "subscriptions", "consent_events", "suppressions")
            for i in found.get_indexes(table)
        }


@pytest.mark.parametrize("ending", ["imported", "dry-run", "crash", "bad-file"])
def test_an_import_into_an_empty_database_ends_with_every_index(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:
    """On SQLite the history's indexes are built after the rows (#16): however the import
    ends, the database has the indexes it had, and the history is found through them."""
    before = indexes(store)
    assert "ix_consent_events_email_hash" in before
    monkeypatch.setattr(importer_module, "BATCH", 2)
    rows = "".join(f"n{i}@example.com\n" for i in range(7))
    path = write(tmp_path, "email\n" + rows + ("x\x00\n" if ending == "bad-file" else ""))
    if ending == "crash":
        real, calls = q.record, []

        def crash_on_third_batch(conn, events):  # type: ignore[no-untyped-def]
            calls.append(1)
            if len(calls) == 3:
                raise RuntimeError("power cut")
            real(conn, events)

        monkeypatch.setattr(q, "record", crash_on_third_batch)
        with pytest.raises(RuntimeError, match="power cut"):
            run(store, path)
    elif ending == "bad-file":
        with pytest.raises(ImportFileError):
            run(store, path)
    else:
        assert run(store, path, dry_run=ending == "dry-run").added == 7
    assert indexes(store) == before
    if ending == "imported":
        from newsletter.audience.addresses import parse

        with store.begin() as conn:
            history = q.history(conn, parse("n3@example.com").hash)
        assert [(e["newsletter"], e["action"], e["method"]) for e in history] == [
            ("daily", "subscribed", "import")
        ]
    else:
        assert lists(store) == {}
