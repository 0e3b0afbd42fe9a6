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


def test_an_app_keeps_its_own_wording(tmp_path: Path) -> None:
    catalog = Catalog()
    catalog.load_dir(_po(tmp_path / "web", {"Time": "時刻", "Log in": "ログイン"}))
    catalog.load_dir(_po(tmp_path / "eco", {"Time": "日時", "Issued": "発行"}), "eco")
    catalog.load_dir(_po(tmp_path / "community", {"Issued": "発行日"}), "community")
    eco, community, platform = (
        catalog.translator("ja", "eco"),
        catalog.translator("ja", "community"),
        catalog.translator("ja"),
    )
    assert (eco("Time"), eco("Issued"), eco("Log in")) == ("日時", "発行", "ログイン")
    assert (community("Time"), community("Issued")) == ("時刻", "発行日")
    assert (platform("Time"), platform("Unknown")) == ("時刻", "Unknown")
    assert catalog.gettext("ja", "Issued", "community") == "発行日"


def test_navigation_labels_do_not_clash() -> None:
    """Navigation is shared by every page, whichever app renders it: one wording each."""
    apps = discover_apps()
    catalog = build_catalog(apps)
    labels = {link.label for app in apps for link in app.nav}
    clashes = [
        f"{lang} {msgid!r}: {a!r} vs {b!r}"
        for lang, msgid, _first, a, _second, b in catalog.conflicts
        if msgid in labels
    ]
    assert clashes == []
    for app in apps:
        own = catalog.translator("ja", app.name)
        for link in app.nav:
            assert own(link.label) == catalog.gettext("ja", link.label), link.label
