//! UI strings, from the translation files in `web/i18n/` (embedded in the binary).
//!
//! Chinese (zh-CN) is the default; English is the switch. Each file is a flat TOML table
//! of `key = "text"`; both must hold the same keys (a test checks it). A key missing at
//! run time shows as `⟦key⟧`, so a gap is visible on the page and in tests, never blank.

use std::collections::HashMap;
use std::sync::OnceLock;

/// A UI language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Zh, Lang::En];

    /// The code used in the cookie, the URL and `<html lang>`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == code)
    }

    /// The other language, for the switch in the header.
    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    fn source(self) -> &'static str {
        match self {
            Lang::Zh => include_str!("../../../web/i18n/zh-CN.toml"),
            Lang::En => include_str!("../../../web/i18n/en.toml"),
        }
    }
}

/// The strings of one language.
#[derive(Debug)]
pub struct Tr {
    pub lang: Lang,
    strings: HashMap<String, String>,
}

impl Tr {
    /// The translations of `lang`, parsed once.
    pub fn of(lang: Lang) -> &'static Tr {
        static ZH: OnceLock<Tr> = OnceLock::new();
        static EN: OnceLock<Tr> = OnceLock::new();
        let cell = match lang {
            Lang::Zh => &ZH,
            Lang::En => &EN,
        };
        cell.get_or_init(|| Tr::parse(lang).expect("the embedded translation files are valid TOML"))
    }

    fn parse(lang: Lang) -> Result<Tr, toml::de::Error> {
        let strings: HashMap<String, String> = toml::from_str(lang.source())?;
        Ok(Tr { lang, strings })
    }

    /// The text for `key`.
    pub fn get<'a>(&'a self, key: &'a str) -> std::borrow::Cow<'a, str> {
        match self.strings.get(key) {
            Some(text) => std::borrow::Cow::Borrowed(text.as_str()),
            None => std::borrow::Cow::Owned(format!("⟦{key}⟧")),
        }
    }

    /// The text for `key` with `{name}` replaced by `value`.
    pub fn with(&self, key: &str, name: &str, value: &str) -> String {
        self.get(key).replace(&format!("{{{name}}}"), value)
    }

    #[cfg(test)]
    fn keys(&self) -> std::collections::BTreeSet<&str> {
        self.strings.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_have_the_same_keys() {
        let zh = Tr::parse(Lang::Zh).unwrap();
        let en = Tr::parse(Lang::En).unwrap();
        let only_zh: Vec<_> = zh.keys().difference(&en.keys()).copied().collect();
        let only_en: Vec<_> = en.keys().difference(&zh.keys()).copied().collect();
        assert!(only_zh.is_empty(), "missing in en.toml: {only_zh:?}");
        assert!(only_en.is_empty(), "missing in zh-CN.toml: {only_en:?}");
        assert!(zh.strings.values().all(|v| !v.trim().is_empty()));
        assert!(en.strings.values().all(|v| !v.trim().is_empty()));
    }

    #[test]
    fn a_missing_key_is_visible() {
        assert_eq!(Tr::of(Lang::En).get("no.such.key"), "⟦no.such.key⟧");
        assert_eq!(Lang::parse("en"), Some(Lang::En));
        assert_eq!(Lang::parse("fr"), None);
    }
}
