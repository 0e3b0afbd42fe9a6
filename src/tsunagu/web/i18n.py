"""Translations: English msgids in the code, Japanese first on every page.

Catalogues are gettext ``.po`` files read with Babel at start-up, one for the platform and
one per app (its *domain*, the app's name). A page rendered from an app's templates looks a
msgid up in that app's catalogue first, then in the merged table of all catalogues, so two
apps may word the same English msgid differently ("Issued": 発行日 on a certificate,
発行 on a credit lot). Where the merged table itself meets two wordings (the first loaded
wins) the clash is recorded in ``Catalog.conflicts``: it matters only for text shared across
apps, such as the navigation labels, which a test keeps free of clashes.
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
        self._domains: dict[tuple[str, str], dict[str, str]] = {}  # (domain, lang) -> table
        self._origin: dict[tuple[str, str], Path] = {}
        # (lang, msgid, first catalogue, its translation, clashing catalogue, its translation)
        self.conflicts: list[tuple[str, str, Path, str, Path, str]] = []

    def load_dir(self, locales: Path, domain: str = "") -> None:
        """Load ``<locales>/<lang>/LC_MESSAGES/messages.po`` for every language present, as
        the catalogue of ``domain`` (an app's name; ``""`` for the platform)."""
        for lang in LANGUAGES:
            path = locales / lang / "LC_MESSAGES" / "messages.po"
            if path.exists():
                with path.open("rb") as fh:
                    catalog = read_po(fh, locale=lang)
                for message in catalog:
                    if message.id and message.string and not message.fuzzy:
                        msgid, text = str(message.id), str(message.string)
                        self._domains.setdefault((domain, lang), {})[msgid] = text
                        self._add(lang, msgid, text, path)

    def _add(self, lang: str, msgid: str, text: str, path: Path) -> None:
        table = self._messages[lang]
        if msgid in table:
            if table[msgid] != text:
                first = self._origin[(lang, msgid)]
                self.conflicts.append((lang, msgid, first, table[msgid], path, text))
            return
        table[msgid] = text
        self._origin[(lang, msgid)] = path

    def gettext(self, lang: str, message: str, domain: str = "") -> str:
        own = self._domains.get((domain, lang), {}) if domain else {}
        return own.get(message) or self._messages.get(lang, {}).get(message, message)

    def translator(self, lang: str, domain: str = ""):
        """``_(msgid, **values)`` for one language, preferring ``domain``'s own wording."""
        table = self._messages.get(lang, {})
        own = self._domains.get((domain, lang), {}) if domain else {}

        def _(message: str, **values: object) -> str:
            text = own.get(message) or table.get(message, message)
            return text.format(**values) if values else text

        return _


def pick_language(query: str | None, cookie: str | None, accept: str | None) -> str:
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate  # type: ignore[return-value]
    if accept and accept.lower().startswith("en"):
        return "en"
    return DEFAULT_LANGUAGE
