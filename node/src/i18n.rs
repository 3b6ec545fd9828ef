//! Words for people, from the translation files in `web/i18n/` (embedded in the binary):
//! the pages' strings and every error the core, the store or the API can return.
//!
//! Chinese (zh-CN) is the default; English is the switch. Each file is a flat TOML table
//! of `key = "text"`; both must hold the same keys (a test checks it). A key missing at
//! run time shows as `⟦key⟧`, so a gap is visible on the page and in tests, never blank.
//!
//! An error is [`Words`]: a stable code (worded under `err.CODE`) and typed parameters
//! ([`Param`]), so the pages and the API word it in the reader's language and the command
//! line in English, all from the same files. The base of the crate: it imports nothing of
//! it, so the store and the edges can all use it.

use std::collections::HashMap;
use std::sync::OnceLock;

use yizhan_sync::domain::case::CaseError;
pub use yizhan_sync::domain::case::Param;
use yizhan_sync::domain::codes::CodeError;

/// What an error says: its code and its parameters, worded by [`Tr::words`] in the
/// reader's language.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Words {
    /// Stable and machine-readable (the API's `error`); the text is `err.CODE`.
    pub code: &'static str,
    pub params: Vec<(&'static str, Param)>,
}

impl Words {
    pub fn new(code: &'static str) -> Words {
        Words {
            code,
            params: Vec::new(),
        }
    }

    /// Adds a parameter shown as it is (a name, a number, an id, technical detail).
    pub fn text(mut self, name: &'static str, value: impl Into<String>) -> Words {
        self.params.push((name, Param::Text(value.into())));
        self
    }

    /// Adds a typed parameter.
    pub fn with(mut self, name: &'static str, value: Param) -> Words {
        self.params.push((name, value));
        self
    }
}

impl From<&CaseError> for Words {
    fn from(e: &CaseError) -> Words {
        Words {
            code: e.code(),
            params: e.params(),
        }
    }
}

impl From<&yizhan_sync::domain::supervision::SupervisionError> for Words {
    fn from(e: &yizhan_sync::domain::supervision::SupervisionError) -> Words {
        use yizhan_sync::domain::supervision::SupervisionError as E;
        match e {
            // The text rule's refusal is worded as it is for case fields.
            E::Control(refused) => Words::from(&CaseError::Text(*refused)),
            E::Text { field, max } => Words::new(e.code())
                .with("field", Param::Field(field))
                .text("max", max.to_string()),
            E::NotificationMonth(detail) | E::NotificationStation(detail) => {
                Words::new(e.code()).text("detail", detail.clone())
            }
            E::NotificationStations { max } => Words::new(e.code()).text("max", max.to_string()),
            _ => Words::new(e.code()),
        }
    }
}

impl From<&yizhan_sync::engine::AuthoringError> for Words {
    fn from(e: &yizhan_sync::engine::AuthoringError) -> Words {
        use yizhan_sync::engine::AuthoringError as E;
        match e {
            E::Level { level } => Words::new(e.code()).text("level", level.to_string()),
            _ => Words::new(e.code()),
        }
    }
}

impl From<&yizhan_sync::domain::staff::StaffError> for Words {
    fn from(e: &yizhan_sync::domain::staff::StaffError) -> Words {
        use yizhan_sync::domain::staff::StaffError as E;
        match e {
            E::Control(refused) => Words::from(&CaseError::Text(*refused)),
            E::Username(user) | E::StandIn(user) => Words::new(e.code()).text("user", user.clone()),
            E::Role(value) | E::Place(value) => Words::new(e.code()).text("value", value.clone()),
            _ => Words::new(e.code()),
        }
    }
}

impl From<&yizhan_sync::domain::draft::DraftError> for Words {
    fn from(e: &yizhan_sync::domain::draft::DraftError) -> Words {
        let mut words = Words::new(e.code());
        for (name, value) in e.params() {
            words = words.text(name, value);
        }
        words
    }
}

impl From<&yizhan_sync::domain::attachment::AttachmentError> for Words {
    fn from(e: &yizhan_sync::domain::attachment::AttachmentError) -> Words {
        e.params()
            .into_iter()
            .fold(Words::new(e.code()), |words, (name, value)| {
                words.text(name, value)
            })
    }
}

impl From<&yizhan_sync::domain::department::DepartmentError> for Words {
    fn from(e: &yizhan_sync::domain::department::DepartmentError) -> Words {
        let mut words = Words::new(e.code());
        for (name, value) in e.params() {
            words = words.text(name, value);
        }
        words
    }
}

impl From<&yizhan_sync::engine::NodeAdminError> for Words {
    fn from(e: &yizhan_sync::engine::NodeAdminError) -> Words {
        Words::new(e.code())
    }
}

impl From<&yizhan_sync::domain::item::ItemProblem> for Words {
    fn from(p: &yizhan_sync::domain::item::ItemProblem) -> Words {
        p.params.iter().fold(
            Words::new(p.code).with("field", Param::ItemField(p.field.clone())),
            |words, (name, value)| words.text(name, value.clone()),
        )
    }
}

impl From<&CodeError> for Words {
    fn from(e: &CodeError) -> Words {
        let mut words = Words::new(e.code()).with("what", Param::Code(e.kind()));
        for (name, value) in e.figures() {
            words = words.text(name, value);
        }
        words
    }
}

impl std::fmt::Display for Words {
    /// In English, for logs and the command line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&Tr::of(Lang::En).words(self))
    }
}

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
            Lang::Zh => include_str!("../../web/i18n/zh-CN.toml"),
            Lang::En => include_str!("../../web/i18n/en.toml"),
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

    /// An error in this language: `err.CODE` with each `{name}` replaced by its
    /// parameter, itself worded here.
    pub fn words(&self, words: &Words) -> String {
        let mut text = self.get(&format!("err.{}", words.code)).into_owned();
        for (name, value) in &words.params {
            text = text.replace(&format!("{{{name}}}"), &self.param(value));
        }
        text
    }

    /// A parameter of an error in this language.
    pub fn param(&self, value: &Param) -> String {
        let list = |items: Vec<String>| items.join(&self.get("list.separator"));
        match value {
            Param::Text(text) => text.clone(),
            Param::Number(n) => n.to_string(),
            Param::List(items) => list(items.clone()),
            Param::Action(kind) => self.get(&format!("action.{}", kind.as_str())).into_owned(),
            Param::Status(status) => self
                .get(&format!("status.{}", status.as_str()))
                .into_owned(),
            Param::Rule(rule) => self.get(&format!("rule.{}", rule.code())).into_owned(),
            Param::Object(object) => self.get(&format!("item.{}", object.as_str())).into_owned(),
            Param::Objects(objects) => list(
                objects
                    .iter()
                    .map(|o| self.get(&format!("item.{}", o.as_str())).into_owned())
                    .collect(),
            ),
            Param::Code(kind) => self
                .get(&format!("code.what.{}", kind.as_str()))
                .into_owned(),
            Param::Field(name) => self.get(&format!("field.{name}")).into_owned(),
            Param::ItemField(path) => self.item_field(path),
            Param::ItemProblems(problems) => problems
                .iter()
                .map(|p| self.words(&Words::from(p)))
                .collect::<Vec<_>>()
                .join(&self.get("list.sentences")),
        }
    }

    /// An item's field by its path (`materials[1].name`): the field under `item_field.`,
    /// a part of an entry under `item_field.of.`, a row by its number from 1 (申请材料 2 · 名称).
    pub fn item_field(&self, path: &str) -> String {
        path.split('.')
            .enumerate()
            .map(|(at, part)| {
                let (name, row) = match part.split_once('[') {
                    Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
                    None => (part, None),
                };
                // A part of an entry (a material's name) has words of its own.
                let key = if at == 0 {
                    "item_field"
                } else {
                    "item_field.of"
                };
                let word = self.get(&format!("{key}.{name}")).into_owned();
                match row {
                    Some(i) => format!("{word} {}", i + 1),
                    None => word,
                }
            })
            .collect::<Vec<_>>()
            .join(" · ")
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

    /// The error codes written in the node's sources: `Words::new("…")` and the code
    /// argument of `ApiError::new(…)`.
    fn codes_in_sources() -> std::collections::BTreeSet<String> {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let is_code =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        let mut codes = std::collections::BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for marker in ["Words::new(\"", "ApiError::new("] {
                for (at, _) in text.match_indices(marker) {
                    let rest = &text[at + marker.len()..];
                    let candidate = if marker.ends_with('"') {
                        rest.split('"').next()
                    } else {
                        // The second argument: the first literal that is a code.
                        rest.split(')').next().and_then(|args| {
                            args.split('"').skip(1).step_by(2).find(|s| is_code(s))
                        })
                    };
                    if let Some(code) = candidate.filter(|c| is_code(c)) {
                        codes.insert(code.to_string());
                    }
                }
            }
        }
        codes
    }

    /// An item broken in every way validation knows reads, in both languages, with every
    /// field it names worded (no `⟦key⟧`, no English in Chinese), as a draft's editor sees it.
    #[test]
    fn an_items_problems_are_worded_with_their_fields() {
        use yizhan_sync::domain::item::{
            FeeLine, MaterialForm, MaterialSource, ProcessStep, Situation, SpecialProcedure,
        };
        let mut item = crate::demo::demo_catalog().remove(0);
        item.name = String::new();
        item.category = " ".into();
        item.subject.name = "民政\u{202E}局".into();
        item.remedies.clear();
        item.conditions.push(String::new());
        item.query_channels.clear();
        item.committed_limit_days = item.legal_limit_days + 1;
        item.legal_extension_days = 400;
        item.decided_by = Some("民政局!".into());
        let mut m = item.materials[0].clone();
        m.originals = 0;
        m.copies = 0;
        m.required = false;
        m.condition = None;
        m.source = Some(MaterialSource::Applicant);
        m.issuer = Some("区民政局".into());
        m.form = Some(MaterialForm::Electronic);
        m.paper_spec = Some("A4".into());
        m.standard = Some(" ".into());
        m.blank_form = Some("x-1".into());
        item.materials.push(m.clone());
        item.materials.push(m.clone());
        item.process.push(ProcessStep {
            name: "审查".into(),
            days: Some(400),
            post: Some(" ".into()),
        });
        item.special_procedures.push(SpecialProcedure {
            name: String::new(),
            max_days: None,
            counted: false,
        });
        item.fees.push(FeeLine {
            name: "工本费".into(),
            standard: String::new(),
            basis: String::new(),
            amount_fen: Some(0),
        });
        item.situations.push(Situation {
            name: String::new(),
            adds: vec![m],
            not_needed: vec!["没有的材料".into()],
        });
        let invalid = item.validate().unwrap_err();
        assert!(invalid.problems.len() >= 20, "{invalid}");
        for lang in Lang::ALL {
            let t = Tr::of(lang);
            for problem in &invalid.problems {
                let text = t.words(&Words::from(problem));
                assert!(
                    !text.contains('⟦') && !text.contains('{'),
                    "{}: {problem:?} reads {text:?}",
                    lang.code()
                );
                if lang == Lang::Zh {
                    assert!(
                        !text.contains("materials") && !text.contains("must"),
                        "English in zh-CN: {text:?}"
                    );
                }
            }
        }
        let t = Tr::of(Lang::Zh);
        assert_eq!(t.item_field("materials[1].name"), "申请材料 2 · 名称");
        let all = Words::new("invalid_item")
            .with("problems", Param::ItemProblems(invalid.problems.clone()));
        assert!(t.words(&all).contains("；"), "{}", t.words(&all));
    }

    /// Every error the core, the store or the API can return has its words in both
    /// languages, with every parameter filled in: adding a code without words fails here.
    #[test]
    fn every_error_code_is_worded_in_both_languages() {
        use yizhan_sync::domain::case::{ActionKind, Rule, Status};
        use yizhan_sync::domain::codes::{CodeKind, CreditCode, ResidentId};
        use yizhan_sync::domain::serial::SerialNo;
        let mut examples: Vec<Words> = CaseError::examples().iter().map(Words::from).collect();
        for bad in [
            "11010519491231002",
            "1101051949123100X2",
            "110105194912310021",
        ] {
            examples.push(Words::from(&ResidentId::parse(bad).unwrap_err()));
        }
        examples.push(Words::from(
            &CreditCode::parse("91440300MA5FXXXX0X").unwrap_err(),
        ));
        examples.push(Words::new(SerialNo::parse("x").unwrap_err().code()));
        let mut listed: Vec<&str> = CaseError::CODES.to_vec();
        listed.extend(CodeError::CODES);
        listed.extend(["serial_exhausted", "epochs_exhausted", "serial_malformed"]);
        {
            use yizhan_sync::domain::supervision::SupervisionError as E;
            for e in [
                E::Text {
                    field: "reason",
                    max: 2000,
                },
                E::ReplyDays,
                E::NotACase("x".into()),
                E::NotANotice("x".into()),
                E::NotAbove,
                E::SupervisorsOnly,
                E::NotTheStation,
                E::LeadsReply,
                E::AssessmentRole,
                E::NotificationMonth("x".into()),
                E::NotificationStation("x".into()),
                E::NotificationStations { max: 500 },
                E::Text {
                    field: "staff",
                    max: 64,
                },
            ] {
                listed.push(e.code());
                examples.push(Words::from(&e));
            }
        }
        for e in yizhan_sync::engine::AuthoringError::examples() {
            listed.push(e.code());
            examples.push(Words::from(&e));
        }
        for e in yizhan_sync::domain::draft::DraftError::examples() {
            listed.push(e.code());
            examples.push(Words::from(&e));
        }
        {
            use yizhan_sync::domain::staff::StaffError as E;
            for e in [
                E::Username("x".into()),
                E::Length,
                E::Role("x".into()),
                E::Verifier,
                E::Place("x".into()),
                E::StandIn("x".into()),
                E::ChiefNotDepartment,
                E::Generation,
                E::NotAnAdminAtAHall,
            ] {
                listed.push(e.code());
                examples.push(Words::from(&e));
            }
        }
        {
            use yizhan_sync::engine::NodeAdminError as E;
            for e in [E::AdminsOnly, E::DashboardLeadsOnly] {
                listed.push(e.code());
                examples.push(Words::from(&e));
            }
        }
        {
            use yizhan_sync::domain::attachment::{AttachmentError as E, ContentType};
            for e in [
                E::Empty,
                E::TooLarge { size: 3_000_000 },
                E::UnknownType {
                    content_type: "application/json".into(),
                },
                E::NotWhatItSays {
                    declared: ContentType::Pdf,
                },
                E::BadName,
            ] {
                listed.push(e.code());
                examples.push(Words::from(&e));
            }
        }
        {
            use yizhan_sync::domain::department::DepartmentError as E;
            for e in [
                E::Code,
                E::Name,
                E::Seals,
                E::Changed,
                E::AdminsOnly,
                E::HallsOnly,
                E::Exists { code: "M1".into() },
                E::Unknown { code: "M1".into() },
            ] {
                listed.push(e.code());
                examples.push(Words::from(&e));
            }
            assert_eq!(
                listed.iter().filter(|c| E::CODES.contains(c)).count(),
                E::CODES.len()
            );
        }
        {
            use yizhan_sync::domain::item::{ITEM_PROBLEMS, ItemProblem};
            for (code, _) in ITEM_PROBLEMS {
                let figures = [
                    ("name", "户口簿"),
                    ("max", "50"),
                    ("min", "1"),
                    ("total", "21"),
                    ("limit", "20"),
                    ("char", "U+202E"),
                    ("code", "X1"),
                    ("days", "50"),
                    ("whole", "45"),
                ];
                examples.push(Words::from(&ItemProblem {
                    field: "materials[1].name".into(),
                    code,
                    params: figures.map(|(n, v)| (n, v.to_string())).to_vec(),
                }));
            }
        }
        let sources = codes_in_sources();
        assert!(
            sources.contains("user_exists") && sources.contains("bad_request"),
            "the source scan finds codes: {sources:?}"
        );
        for code in sources.iter().map(String::as_str) {
            let mut words = Words::new(Box::leak(code.to_string().into_boxed_str()));
            for name in [
                "detail", "why", "user", "case", "status", "item", "scope", "wanted", "version",
                "next", "node", "problems", "wall", "last", "name", "value", "low", "high",
            ] {
                words = words.text(name, "示例");
            }
            examples.push(words);
        }
        let mut keys: Vec<String> = listed.iter().map(|c| format!("err.{c}")).collect();
        keys.extend(
            ActionKind::ALL
                .iter()
                .map(|k| format!("action.{}", k.as_str())),
        );
        keys.extend(Status::ALL.iter().map(|s| format!("status.{}", s.as_str())));
        keys.extend(Rule::ALL.iter().map(|r| format!("rule.{}", r.code())));
        keys.extend(
            yizhan_sync::domain::fee::PayMethod::ALL
                .iter()
                .map(|m| format!("fee.method.{}", m.as_str())),
        );
        keys.extend(
            ActionKind::ALL
                .iter()
                .map(|k| format!("event.{}", k.as_str())),
        );
        keys.extend(
            CodeKind::ALL
                .iter()
                .map(|k| format!("code.what.{}", k.as_str())),
        );
        for lang in Lang::ALL {
            let t = Tr::of(lang);
            for key in &keys {
                assert!(
                    !t.get(key).contains('⟦'),
                    "{}: no words for {key}",
                    lang.code()
                );
            }
            for words in &examples {
                let text = t.words(words);
                assert!(
                    !text.contains('⟦') && !text.contains('{') && !text.contains('}'),
                    "{}: err.{} reads {text:?}",
                    lang.code(),
                    words.code
                );
                if lang == Lang::Zh {
                    let english = text.split(|c: char| !c.is_ascii_alphabetic()).find(|w| {
                        w.len() >= 3
                            && !["json", "api", "openapi", "application", "content", "type"]
                                .contains(&w.to_ascii_lowercase().as_str())
                    });
                    assert!(english.is_none(), "English in zh-CN: {text:?}");
                }
            }
        }
    }

    #[test]
    fn a_missing_key_is_visible() {
        assert_eq!(Tr::of(Lang::En).get("no.such.key"), "⟦no.such.key⟧");
        assert_eq!(Lang::parse("en"), Some(Lang::En));
        assert_eq!(Lang::parse("fr"), None);
    }
}
