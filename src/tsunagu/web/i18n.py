"""Translations: English msgids in the code, Japanese first on every page.

Catalogues are gettext ``.po`` files read with Babel at start-up, one for the platform and
one per app, merged into one table. A msgid two catalogues translate differently would
make one app's wording silently replace another's: such clashes are recorded in
``Catalog.conflicts`` (the first translation loaded wins) and a test keeps the list empty.
``ja`` is the default language; ``en`` is the switch.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.pofile import read_po

LANGUAGES = ("ja", "en")
DEFAULT_LANGUAGE = "ja"


class Catalog:
    def __init__(self) -> None:
        self._messages: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}
        self._origin: dict[tuple[str, str], Path] = {}
        # (lang, msgid, first catalogue, its translation, clashing catalogue, its translation)
        self.conflicts: list[tuple[str, str, Path, str, Path, str]] = []

    def load_dir(self, locales: Path) -> None:
        """Load ``<locales>/<lang>/LC_MESSAGES/messages.po`` for every language present."""
        for lang in LANGUAGES:
            path = locales / lang / "LC_MESSAGES" / "messages.po"
            if path.exists():
                with path.open("rb") as fh:
                    catalog = read_po(fh, locale=lang)
                for message in catalog:
                    if message.id and message.string and not message.fuzzy:
                        self._add(lang, str(message.id), str(message.string), path)

    def _add(self, lang: str, msgid: str, text: str, path: Path) -> None:
        table = self._messages[lang]
        if msgid in table:
            if table[msgid] != text:
                first = self._origin[(lang, msgid)]
                self.conflicts.append((lang, msgid, first, table[msgid], path, text))
            return
        table[msgid] = text
        self._origin[(lang, msgid)] = path

    def gettext(self, lang: str, message: str) -> str:
        return self._messages.get(lang, {}).get(message, message)

    def translator(self, lang: str):
        table = self._messages.get(lang, {})

        def _(message: str, **values: object) -> str:
            text = table.get(message, message)
            return text.format(**values) if values else text

        return _


def pick_language(query: str | None, cookie: str | None, accept: str | None) -> str:
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate  # type: ignore[return-value]
    if accept and accept.lower().startswith("en"):
        return "en"
    return DEFAULT_LANGUAGE
