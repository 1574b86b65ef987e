"""#11 rule 19 through the preferences page: "Delete me" removes the outbox files addressed
to the reader (their confirmation emails), and no one else's."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from tests.web.test_preferences import ask_by_email, csrf, data_link
from tests.web.test_subscribe import outbox, sign_up


def test_delete_me_removes_their_outbox_files(service: TestClient) -> None:
    assert sign_up(service, "Jane.Doe@example.com", "green").status_code == 200  # Jane, id 1
    assert sign_up(service, "other.reader@example.net", "green").status_code == 200
    assert sorted(m["To"] for m in outbox(service)) == [
        "jane.doe@example.com",  # as stored
        "other.reader@example.net",
    ]
    ask_by_email(service, "delete")
    (mailed,) = [m for m in outbox(service) if "/data/" in str(m.get_body(("plain",)))]
    path = data_link(mailed)
    ask = service.get(path)
    done = service.post(path, data={"csrf": csrf(ask.text)})
    assert done.status_code == 200 and "We have erased your address" in done.text
    assert [m["To"] for m in outbox(service)] == ["other.reader@example.net"]
    files = (Path(service.workspace) / "outbox").rglob("*")  # type: ignore[attr-defined]
    assert not [p for p in files if p.is_file() and b"jane.doe@" in p.read_bytes().lower()]
