//! Codes with check digits: item codes (事项编码), unified social credit codes, resident
//! identity numbers and division codes.
//!
//! A catalog typo in a code silently breaks serial numbers and statistics downstream, so
//! every code is a validated newtype and the check digits are verified (DOMAIN §2).

use std::fmt;

/// Which kind of code an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodeKind {
    CreditCode,
    OrgCode,
    BasicCode,
    ImplCode,
    ResidentId,
    DivisionCode,
}

impl CodeKind {
    pub const ALL: [CodeKind; 6] = [
        CodeKind::CreditCode,
        CodeKind::OrgCode,
        CodeKind::BasicCode,
        CodeKind::ImplCode,
        CodeKind::ResidentId,
        CodeKind::DivisionCode,
    ];

    /// A stable name, which the UI words in the reader's language.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeKind::CreditCode => "credit_code",
            CodeKind::OrgCode => "org_code",
            CodeKind::BasicCode => "basic_code",
            CodeKind::ImplCode => "impl_code",
            CodeKind::ResidentId => "resident_id",
            CodeKind::DivisionCode => "division_code",
        }
    }
}

impl fmt::Display for CodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CodeKind::CreditCode => "unified social credit code",
            CodeKind::OrgCode => "organisation code inside the unified social credit code",
            CodeKind::BasicCode => "basic code (基本编码)",
            CodeKind::ImplCode => "implementation code (实施编码)",
            CodeKind::ResidentId => "resident identity number (公民身份号码)",
            CodeKind::DivisionCode => "division code",
        })
    }
}

/// Why a code was rejected. The message names the code and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("{what} must be {expected} characters, got {got}: {code:?}")]
    Length {
        what: CodeKind,
        expected: usize,
        got: usize,
        code: String,
    },
    #[error("{what} contains a character that is not allowed at position {position}: {code:?}")]
    Charset {
        what: CodeKind,
        position: usize,
        code: String,
    },
    #[error("{what} has a wrong check character (expected {expected:?}): {code:?}")]
    CheckDigit {
        what: CodeKind,
        expected: char,
        code: String,
    },
    #[error("{what} is not valid: {reason}: {code:?}")]
    Invalid {
        what: CodeKind,
        reason: &'static str,
        code: String,
    },
}

/// The characters of GB 32100 codes, in check-value order (no I, O, S, V, Z).
const CREDIT_CHARSET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// 统一社会信用代码 (GB 32100-2015): registration authority, category, 6-digit division,
/// the 9-character organisation code (GB 11714, with its own check character) and a mod-31
/// check character.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CreditCode(String);

impl CreditCode {
    pub fn parse(code: &str) -> Result<CreditCode, CodeError> {
        const WHAT: CodeKind = CodeKind::CreditCode;
        check_len(WHAT, code, 18)?;
        let mut sum = 0;
        for (i, c) in code.chars().enumerate() {
            let value = CREDIT_CHARSET.find(c).ok_or_else(|| CodeError::Charset {
                what: WHAT,
                position: i + 1,
                code: code.to_string(),
            })? as u32;
            if i < 17 {
                sum += value * CREDIT_WEIGHTS[i];
            }
        }
        let expected = CREDIT_CHARSET.as_bytes()[((31 - sum % 31) % 31) as usize] as char;
        if !code.ends_with(expected) {
            return Err(CodeError::CheckDigit {
                what: WHAT,
                expected,
                code: code.to_string(),
            });
        }
        if !code[2..8].bytes().all(|b| b.is_ascii_digit()) {
            return Err(CodeError::Invalid {
                what: WHAT,
                reason: "characters 3-8 must be a division code",
                code: code.to_string(),
            });
        }
        let org = &code[8..17];
        let expected_org = org_check_char(&org[..8]).ok_or_else(|| CodeError::Invalid {
            what: WHAT,
            reason: "the organisation code (characters 9-17) must be digits or capital letters",
            code: code.to_string(),
        })?;
        if !org.ends_with(expected_org) {
            return Err(CodeError::CheckDigit {
                what: CodeKind::OrgCode,
                expected: expected_org,
                code: code.to_string(),
            });
        }
        Ok(CreditCode(code.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 6-digit division code of the registering authority.
    pub fn division(&self) -> &str {
        &self.0[2..8]
    }
}

impl CodeError {
    /// Every code [`CodeError::code`] returns.
    pub const CODES: [&'static str; 4] = [
        "code_length",
        "code_charset",
        "code_check_character",
        "code_invalid",
    ];

    /// A stable name for the error, which the UI words in the reader's language.
    pub fn code(&self) -> &'static str {
        match self {
            CodeError::Length { .. } => "code_length",
            CodeError::Charset { .. } => "code_charset",
            CodeError::CheckDigit { .. } => "code_check_character",
            CodeError::Invalid { .. } => "code_invalid",
        }
    }

    /// Which kind of code it is about.
    pub fn kind(&self) -> CodeKind {
        match self {
            CodeError::Length { what, .. }
            | CodeError::Charset { what, .. }
            | CodeError::CheckDigit { what, .. }
            | CodeError::Invalid { what, .. } => *what,
        }
    }

    /// The error's figures (the kind of code is [`CodeError::kind`]); the rule a code
    /// breaks in [`CodeError::Invalid`] stays in English, for the technician.
    pub fn figures(&self) -> Vec<(&'static str, String)> {
        match self {
            CodeError::Length { expected, got, .. } => {
                vec![("expected", expected.to_string()), ("got", got.to_string())]
            }
            CodeError::Charset { position, .. } => vec![("position", position.to_string())],
            CodeError::CheckDigit { .. } | CodeError::Invalid { .. } => Vec::new(),
        }
    }

    /// The same error with the offending code masked like an identity number.
    fn masked(self) -> CodeError {
        let mask = |code: String| {
            let chars: Vec<char> = code.chars().collect();
            if chars.len() <= 8 {
                "*".repeat(chars.len())
            } else {
                let tail: String = chars[chars.len() - 4..].iter().collect();
                format!(
                    "{}{}{tail}",
                    chars[..4].iter().collect::<String>(),
                    "*".repeat(chars.len() - 8)
                )
            }
        };
        match self {
            CodeError::Length {
                what,
                expected,
                got,
                code,
            } => CodeError::Length {
                what,
                expected,
                got,
                code: mask(code),
            },
            CodeError::Charset {
                what,
                position,
                code,
            } => CodeError::Charset {
                what,
                position,
                code: mask(code),
            },
            CodeError::CheckDigit {
                what,
                expected,
                code,
            } => CodeError::CheckDigit {
                what,
                expected,
                code: mask(code),
            },
            CodeError::Invalid { what, reason, code } => CodeError::Invalid {
                what,
                reason,
                code: mask(code),
            },
        }
    }
}

/// Check character of a GB 11714 organisation code body (8 characters).
fn org_check_char(body: &str) -> Option<char> {
    let mut sum = 0;
    for (c, w) in body.chars().zip(ORG_WEIGHTS) {
        let value = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            _ => return None,
        };
        sum += value * w;
    }
    Some(match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        n => char::from_digit(n, 10).expect("single digit"),
    })
}

/// 基本编码: the 12-character code of an item in the basic catalogue (GB/T 39554.1).
/// Its inner structure is not pinned down, so only length and charset are checked.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BasicCode(String);

impl BasicCode {
    pub fn parse(code: &str) -> Result<BasicCode, CodeError> {
        const WHAT: CodeKind = CodeKind::BasicCode;
        check_len(WHAT, code, 12)?;
        check_charset(WHAT, code, |c| c.is_ascii_digit() || c.is_ascii_uppercase())?;
        Ok(BasicCode(code.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 行使层级: the level of government that exercises an item, as the digit inside the
/// implementation code (`4` = county/district, `5` = township/sub-district, DOMAIN §2).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum HandlingLevel {
    National,
    Province,
    City,
    District,
    Subdistrict,
    Community,
}

impl HandlingLevel {
    pub const ALL: [HandlingLevel; 6] = [
        HandlingLevel::National,
        HandlingLevel::Province,
        HandlingLevel::City,
        HandlingLevel::District,
        HandlingLevel::Subdistrict,
        HandlingLevel::Community,
    ];

    pub fn digit(self) -> char {
        match self {
            HandlingLevel::National => '1',
            HandlingLevel::Province => '2',
            HandlingLevel::City => '3',
            HandlingLevel::District => '4',
            HandlingLevel::Subdistrict => '5',
            HandlingLevel::Community => '6',
        }
    }

    pub fn from_digit(c: char) -> Option<HandlingLevel> {
        HandlingLevel::ALL.into_iter().find(|l| l.digit() == c)
    }

    pub fn zh(self) -> &'static str {
        match self {
            HandlingLevel::National => "国家级",
            HandlingLevel::Province => "省级",
            HandlingLevel::City => "市级",
            HandlingLevel::District => "县级（区）",
            HandlingLevel::Subdistrict => "乡镇（街道）级",
            HandlingLevel::Community => "村（社区）级",
        }
    }
}

/// 实施编码: 31 characters = the implementing body's credit code (18) + level digit (1) +
/// basic code (12), e.g. `11440232MB2D06811W` `4` `000117051000`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImplCode(String);

impl ImplCode {
    pub const LEN: usize = 31;

    pub fn parse(code: &str) -> Result<ImplCode, CodeError> {
        const WHAT: CodeKind = CodeKind::ImplCode;
        check_len(WHAT, code, Self::LEN)?;
        check_charset(WHAT, code, |c| c.is_ascii_digit() || c.is_ascii_uppercase())?;
        CreditCode::parse(&code[..18])?;
        let level = code[18..19].chars().next().expect("length checked");
        if HandlingLevel::from_digit(level).is_none() {
            return Err(CodeError::Invalid {
                what: WHAT,
                reason: "character 19 must be a handling-level digit 1-6",
                code: code.to_string(),
            });
        }
        BasicCode::parse(&code[19..])?;
        Ok(ImplCode(code.to_string()))
    }

    /// Builds the code from its parts.
    pub fn compose(subject: &CreditCode, level: HandlingLevel, basic: &BasicCode) -> ImplCode {
        ImplCode(format!(
            "{}{}{}",
            subject.as_str(),
            level.digit(),
            basic.as_str()
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn subject(&self) -> CreditCode {
        CreditCode(self.0[..18].to_string())
    }

    pub fn level(&self) -> HandlingLevel {
        HandlingLevel::from_digit(self.0.as_bytes()[18] as char).expect("validated")
    }

    pub fn basic(&self) -> BasicCode {
        BasicCode(self.0[19..].to_string())
    }
}

/// 公民身份号码 (GB 11643-1999): 6-digit address code, 8-digit birth date, 3-digit order
/// code and a mod-11 check character (0-9 or X).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResidentId(String);

impl ResidentId {
    /// Checks a number. Errors never repeat it in full (it is personal data and error
    /// messages reach logs): they show it masked.
    pub fn parse(code: &str) -> Result<ResidentId, CodeError> {
        ResidentId::parse_unmasked(code).map_err(|e| e.masked())
    }

    fn parse_unmasked(code: &str) -> Result<ResidentId, CodeError> {
        const WHAT: CodeKind = CodeKind::ResidentId;
        let code = code.to_ascii_uppercase();
        check_len(WHAT, &code, 18)?;
        check_charset(WHAT, &code[..17], |c| c.is_ascii_digit())?;
        const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = code
            .bytes()
            .take(17)
            .zip(WEIGHTS)
            .map(|(b, w)| u32::from(b - b'0') * w)
            .sum();
        let expected = b"10X98765432"[(sum % 11) as usize] as char;
        if !code.ends_with(expected) {
            return Err(CodeError::CheckDigit {
                what: WHAT,
                expected,
                code,
            });
        }
        if super::calendar::Date::parse_compact(&code[6..14]).is_none() {
            return Err(CodeError::Invalid {
                what: WHAT,
                reason: "characters 7-14 must be a birth date YYYYMMDD",
                code,
            });
        }
        Ok(ResidentId(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with the birth date and order code hidden, for lists (DESIGN §10).
    pub fn masked(&self) -> String {
        format!("{}********{}", &self.0[..6], &self.0[14..])
    }
}

/// The kind of division a code names, from its length and trailing zeros (GB/T 2260,
/// extended to 9 digits for sub-districts and 12 for communities).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DivisionLevel {
    City,
    District,
    Subdistrict,
    Community,
}

/// 行政区划代码 of a node's division.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DivisionCode(String);

impl DivisionCode {
    pub fn parse(code: &str) -> Result<DivisionCode, CodeError> {
        const WHAT: CodeKind = CodeKind::DivisionCode;
        if ![6, 9, 12].contains(&code.len()) {
            return Err(CodeError::Invalid {
                what: WHAT,
                reason: "must have 6 (city or district), 9 (sub-district) or 12 (community) digits",
                code: code.to_string(),
            });
        }
        check_charset(WHAT, code, |c| c.is_ascii_digit())?;
        if code.starts_with("00") || code[2..4] == *"00" && code.len() > 6 {
            return Err(CodeError::Invalid {
                what: WHAT,
                reason: "the province and city digits must not be zero",
                code: code.to_string(),
            });
        }
        if code.len() > 6 && code[4..6] == *"00" {
            return Err(CodeError::Invalid {
                what: WHAT,
                reason: "a sub-district or community must lie in a district (digits 5-6 not 00)",
                code: code.to_string(),
            });
        }
        if code.len() >= 9 && code[6..9] == *"000" {
            return Err(CodeError::Invalid {
                what: WHAT,
                reason: "digits 7-9 (sub-district) must not be 000",
                code: code.to_string(),
            });
        }
        if code.len() == 12 && code[9..12] == *"000" {
            return Err(CodeError::Invalid {
                what: WHAT,
                reason: "digits 10-12 (community) must not be 000",
                code: code.to_string(),
            });
        }
        Ok(DivisionCode(code.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn level(&self) -> DivisionLevel {
        match self.0.len() {
            12 => DivisionLevel::Community,
            9 => DivisionLevel::Subdistrict,
            _ if self.0.ends_with("00") => DivisionLevel::City,
            _ => DivisionLevel::District,
        }
    }

    /// Whether `self` is `other` or lies inside it.
    pub fn is_within(&self, other: &DivisionCode) -> bool {
        match other.level() {
            DivisionLevel::City => self.0.starts_with(&other.0[..4]),
            _ => self.0.starts_with(&other.0),
        }
    }

    /// The 12-digit form, padded with zeros.
    pub fn padded(&self) -> String {
        format!("{:0<12}", self.0)
    }
}

fn check_len(what: CodeKind, code: &str, expected: usize) -> Result<(), CodeError> {
    let got = code.chars().count();
    if got != expected || code.len() != expected {
        return Err(CodeError::Length {
            what,
            expected,
            got,
            code: code.to_string(),
        });
    }
    Ok(())
}

fn check_charset(
    what: CodeKind,
    code: &str,
    allowed: impl Fn(char) -> bool,
) -> Result<(), CodeError> {
    match code.chars().position(|c| !allowed(c)) {
        Some(i) => Err(CodeError::Charset {
            what,
            position: i + 1,
            code: code.to_string(),
        }),
        None => Ok(()),
    }
}

macro_rules! string_code {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($t), self.0)
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                <$t>::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    )*};
}
string_code!(CreditCode, BasicCode, ImplCode, DivisionCode);

impl serde::Serialize for ResidentId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for ResidentId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ResidentId, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        ResidentId::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Personal data stays out of logs and panic messages.
        write!(f, "ResidentId({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_codes() {
        let table = [
            ("11440399990000017K", Ok(())),
            ("1144039999000005XU", Ok(())),
            ("11440232MB2D06811W", Ok(())),
            ("91350100M000100Y43", Ok(())),
            ("11440399990000017J", Err("wrong check character")),
            ("11440399990000027K", Err("wrong check character")),
            ("1144039999000001", Err("must be 18 characters")),
            ("11440399990000017k", Err("not allowed at position 18")),
            ("1I440399990000017K", Err("not allowed at position 2")),
            ("114403999900000I7K", Err("not allowed")),
        ];
        for (code, expected) in table {
            match (CreditCode::parse(code), expected) {
                (Ok(c), Ok(())) => assert_eq!(c.as_str(), code),
                (Err(e), Err(needle)) => {
                    assert!(e.to_string().contains(needle), "{code}: {e}")
                }
                (got, want) => panic!("{code}: got {got:?}, want {want:?}"),
            }
        }
        assert_eq!(
            CreditCode::parse("11440399990000017K").unwrap().division(),
            "440399"
        );
    }

    #[test]
    fn organisation_code_inside_credit_code_is_checked() {
        // Organisation code 99000001 should end in 7; end it in 0 and give the whole code a
        // correct mod-31 check character, so only the inner check can catch it.
        let first17 = "11440399990000010";
        let sum: u32 = first17
            .chars()
            .zip(CREDIT_WEIGHTS)
            .map(|(ch, w)| CREDIT_CHARSET.find(ch).unwrap() as u32 * w)
            .sum();
        let check = CREDIT_CHARSET.as_bytes()[((31 - sum % 31) % 31) as usize] as char;
        let err = CreditCode::parse(&format!("{first17}{check}")).unwrap_err();
        assert!(err.to_string().contains("organisation code"), "{err}");
    }

    #[test]
    fn implementation_codes() {
        let ok = ImplCode::parse("1144039999000005XU5002099101000").unwrap();
        assert_eq!(ok.subject().as_str(), "1144039999000005XU");
        assert_eq!(ok.level(), HandlingLevel::Subdistrict);
        assert_eq!(ok.basic().as_str(), "002099101000");
        assert_eq!(
            ImplCode::compose(&ok.subject(), ok.level(), &ok.basic()),
            ok
        );
        let table = [
            ("11440232MB2D06811W4000117051000", None),
            ("11440232MB2D06811W400011705100", Some("31 characters")),
            ("11440232MB2D06811X4000117051000", Some("check character")),
            (
                "11440232MB2D06811W9000117051000",
                Some("handling-level digit"),
            ),
            ("11440232MB2D06811W400011705100a", Some("not allowed")),
        ];
        for (code, err) in table {
            match (ImplCode::parse(code), err) {
                (Ok(_), None) => {}
                (Err(e), Some(needle)) => assert!(e.to_string().contains(needle), "{code}: {e}"),
                (got, want) => panic!("{code}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn resident_ids() {
        // Sample numbers built for tests (valid check digits, fictitious people).
        let table = [
            ("11010519491231002X", true),
            ("440304199001011234", false),
            ("440304199001011233", true),
            ("44030419900101123", false),
            ("440304199002301232", false), // right check digit, but 02-30 is not a date
            ("11010519491231002x", true),  // lower-case x is accepted and normalised
            ("4403041990010112A7", false),
        ];
        for (code, valid) in table {
            assert_eq!(ResidentId::parse(code).is_ok(), valid, "{code}");
        }
        let err = ResidentId::parse("440304199001011234")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("4403**********1234") && !err.contains("19900101"),
            "{err}"
        );
        let id = ResidentId::parse("440304199001011233").unwrap();
        assert_eq!(id.masked(), "440304********1233");
        assert!(!format!("{id:?}").contains("19900101"));
    }

    #[test]
    fn division_codes() {
        let table = [
            ("440300", Some(DivisionLevel::City)),
            ("440304", Some(DivisionLevel::District)),
            ("440304001", Some(DivisionLevel::Subdistrict)),
            ("440304001001", Some(DivisionLevel::Community)),
            ("44030400100", None),
            ("440304000", None),
            ("440304001000", None),
            ("4403a4", None),
            ("000000", None),
            ("440000001", None),
        ];
        for (code, level) in table {
            assert_eq!(
                DivisionCode::parse(code).ok().map(|d| d.level()),
                level,
                "{code}"
            );
        }
        let community = DivisionCode::parse("440304001001").unwrap();
        let sub = DivisionCode::parse("440304001").unwrap();
        let district = DivisionCode::parse("440304").unwrap();
        let city = DivisionCode::parse("440300").unwrap();
        let other = DivisionCode::parse("440305").unwrap();
        assert!(community.is_within(&sub) && sub.is_within(&district) && district.is_within(&city));
        assert!(community.is_within(&city) && !community.is_within(&other));
        assert_eq!(sub.padded(), "440304001000");
    }
}
