"""The merged translation table: no app silently rewords another's message."""

from __future__ import annotations

from pathlib import Path

from tsunagu.platform import discover_apps
from tsunagu.web.app import build_catalog
from tsunagu.web.i18n import Catalog


def _po(folder: Path, entries: dict[str, str]) -> Path:
    target = folder / "ja" / "LC_MESSAGES"
    target.mkdir(parents=True)
    body = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
    for msgid, text in entries.items():
        body += f'msgid "{msgid}"\nmsgstr "{text}"\n\n'
    (target / "messages.po").write_text(body, encoding="utf-8")
    return folder


def test_a_clash_is_recorded_and_the_first_wording_stays(tmp_path: Path) -> None:
    catalog = Catalog()
    catalog.load_dir(_po(tmp_path / "a", {"Status": "状態", "Save": "保存"}))
    catalog.load_dir(_po(tmp_path / "b", {"Status": "ステータス", "Save": "保存"}))
    assert catalog.gettext("ja", "Status") == "状態"
    assert [(c[0], c[1], c[3], c[5]) for c in catalog.conflicts] == [
        ("ja", "Status", "状態", "ステータス")
    ]


def test_installed_catalogues_do_not_clash() -> None:
    catalog = build_catalog(discover_apps())
    clashes = [
        f"{lang} {msgid!r}: {first.parent.parent.parent.parent.name}={a!r} vs "
        f"{second.parent.parent.parent.parent.name}={b!r}"
        for lang, msgid, first, a, second, b in catalog.conflicts
    ]
    assert clashes == []
