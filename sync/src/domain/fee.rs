//! Fees on a case (行政收费, SZDB/Z 176 §9.5): what a case was charged and on which
//! receipt, and what was waived and why.
//!
//! §9.5.1: nothing is charged unless a law or regulation says so, so a case may record a
//! payment or an exemption only for a fee line its item version lists (an item without
//! fee lines is 不收费). §9.5.2: a legal fee is paid at the hall's payment point against a
//! receipt (票据) printed by the finance department, so a payment names how it was paid and
//! the receipt's number.
//!
//! Amounts are whole fen (分), never floats. Each line of a case takes at most one payment
//! and one exemption (a partial 减免 beside the payment of the rest); when the line has a
//! fixed amount, the two together never exceed it. There are no refunds in this version:
//! a payment stands once recorded, and two recorded at once (two counters, apart) are a
//! conflict a lead resolves, like any other pair of incompatible events.
//!
//! The rules a receiver can check on an event alone ([`check_line`]) and those that need
//! the case's earlier events ([`check_against`]) are separate: every receiver refuses a
//! change that breaks the first (`effect`), and `derive` flags the second as a conflict.

use super::calendar::Date;
use super::item::FeeLine;

/// The largest amount a fee line or a payment may carry: ¥1,000,000.00, so sums over a
/// hall's cases stay far from overflowing.
pub const MAX_FEN: u64 = 100_000_000;

/// How a fee was paid (缴费方式): a closed list, worded in `web/i18n` (`fee.method.*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayMethod {
    /// 现金.
    Cash,
    /// 银行卡 (POS).
    Card,
    /// 扫码 (mobile payment).
    Mobile,
    /// 银行转账.
    BankTransfer,
}

impl PayMethod {
    pub const ALL: [PayMethod; 4] = [
        PayMethod::Cash,
        PayMethod::Card,
        PayMethod::Mobile,
        PayMethod::BankTransfer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PayMethod::Cash => "cash",
            PayMethod::Card => "card",
            PayMethod::Mobile => "mobile",
            PayMethod::BankTransfer => "bank_transfer",
        }
    }

    pub fn parse(s: &str) -> Option<PayMethod> {
        PayMethod::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// An amount in fen as a person reads it: `¥12.50`.
pub fn yuan(fen: u64) -> String {
    format!("¥{}.{:02}", fen / 100, fen % 100)
}

/// Reads an amount typed in yuan (`12.5`, `12.50`, `¥12`) into fen, exactly: at most two
/// decimals, no sign, no exponent. `None` for anything else.
pub fn parse_yuan(text: &str) -> Option<u64> {
    let text = text.trim();
    let text = text
        .strip_prefix('¥')
        .or_else(|| text.strip_prefix('￥'))
        .unwrap_or(text)
        .trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 9 || frac.len() > 2 || !digits(whole) || !digits(frac) {
        return None;
    }
    let frac_fen: u64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<u64>().ok()? * 10,
        _ => frac.parse().ok()?,
    };
    whole
        .parse::<u64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(frac_fen)
}

/// A payment recorded on a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    pub event_id: String,
    pub amount_fen: u64,
    pub method: PayMethod,
    /// 票据号.
    pub receipt: String,
    pub staff: String,
    pub on: Date,
}

/// An exemption (减免) recorded on a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exemption {
    pub event_id: String,
    pub amount_fen: u64,
    pub reason: String,
    /// The policy or rule it rests on (减免依据).
    pub basis: String,
    pub staff: String,
    pub on: Date,
}

/// One fee line of a case's item and what the case has had of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineFees {
    pub line: FeeLine,
    pub payment: Option<Payment>,
    pub exemption: Option<Exemption>,
}

impl LineFees {
    /// Fen paid and exempted on the line together.
    pub fn covered_fen(&self) -> u64 {
        self.payment.as_ref().map_or(0, |p| p.amount_fen)
            + self.exemption.as_ref().map_or(0, |e| e.amount_fen)
    }

    /// What is still to pay, for a line with a fixed amount; `None` for a line whose
    /// standard a person reads (its amount is known once paid).
    pub fn outstanding_fen(&self) -> Option<u64> {
        self.line
            .amount_fen
            .map(|a| a.saturating_sub(self.covered_fen()))
    }

    /// Whether nothing more is due: a fixed amount fully paid or exempted, or a line
    /// without one that has a payment or an exemption.
    pub fn settled(&self) -> bool {
        match self.outstanding_fen() {
            Some(left) => left == 0,
            None => self.payment.is_some() || self.exemption.is_some(),
        }
    }
}

/// The fee lines of a case, with what each has had (`CaseState::fees`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaseFees {
    pub lines: Vec<LineFees>,
}

impl CaseFees {
    /// Every line of the item, nothing paid yet.
    pub fn of(lines: &[FeeLine]) -> CaseFees {
        CaseFees {
            lines: lines
                .iter()
                .map(|line| LineFees {
                    line: line.clone(),
                    payment: None,
                    exemption: None,
                })
                .collect(),
        }
    }

    pub fn line(&self, name: &str) -> Option<&LineFees> {
        self.lines.iter().find(|l| l.line.name == name)
    }

    pub fn paid_fen(&self) -> u64 {
        self.lines
            .iter()
            .filter_map(|l| l.payment.as_ref())
            .map(|p| p.amount_fen)
            .sum()
    }

    pub fn exempt_fen(&self) -> u64 {
        self.lines
            .iter()
            .filter_map(|l| l.exemption.as_ref())
            .map(|e| e.amount_fen)
            .sum()
    }

    /// The fixed amounts still to pay (lines without a fixed amount count nothing).
    pub fn outstanding_fen(&self) -> u64 {
        self.lines
            .iter()
            .filter_map(LineFees::outstanding_fen)
            .sum()
    }

    /// The lines with something still due: what a worker is told before completing.
    pub fn unsettled(&self) -> Vec<&LineFees> {
        self.lines.iter().filter(|l| !l.settled()).collect()
    }
}

/// Why a payment or an exemption cannot be recorded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FeeRefused {
    /// §9.5.1: the item charges nothing.
    #[error("the case's item charges no fee (不收费, §9.5.1)")]
    NoFees,
    #[error("{name:?} is not one of the fee lines of the case's item")]
    UnknownLine { name: String },
    #[error("the amount must be above zero")]
    Zero,
    #[error("the amount is more than {allowed} fen, what is left of {name:?}")]
    TooMuch { name: String, allowed: u64 },
    #[error("{name:?} already has a payment")]
    AlreadyPaid { name: String },
    #[error("{name:?} already has an exemption")]
    AlreadyExempted { name: String },
}

/// Whether a payment or exemption is one of a payment or an exemption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    Payment,
    Exemption,
}

/// The rules one event shows on its own, against the fee lines of the case's item: a fee
/// line the item has, an amount above zero and within the line's fixed amount.
pub fn check_line<'a>(
    lines: &'a [FeeLine],
    name: &str,
    amount_fen: u64,
) -> Result<&'a FeeLine, FeeRefused> {
    if lines.is_empty() {
        return Err(FeeRefused::NoFees);
    }
    let line = lines
        .iter()
        .find(|l| l.name == name)
        .ok_or_else(|| FeeRefused::UnknownLine {
            name: name.to_string(),
        })?;
    if amount_fen == 0 {
        return Err(FeeRefused::Zero);
    }
    let allowed = line.amount_fen.unwrap_or(MAX_FEN);
    if amount_fen > allowed {
        return Err(FeeRefused::TooMuch {
            name: line.name.clone(),
            allowed,
        });
    }
    Ok(line)
}

/// The rules that need what the case already had: one payment and one exemption per
/// line, together within its fixed amount.
pub fn check_against(
    fees: &CaseFees,
    record: Record,
    name: &str,
    amount_fen: u64,
) -> Result<(), FeeRefused> {
    let lines: Vec<FeeLine> = fees.lines.iter().map(|l| l.line.clone()).collect();
    check_line(&lines, name, amount_fen)?;
    let Some(line) = fees.line(name) else {
        return Err(FeeRefused::UnknownLine {
            name: name.to_string(),
        });
    };
    match record {
        Record::Payment if line.payment.is_some() => {
            return Err(FeeRefused::AlreadyPaid {
                name: name.to_string(),
            });
        }
        Record::Exemption if line.exemption.is_some() => {
            return Err(FeeRefused::AlreadyExempted {
                name: name.to_string(),
            });
        }
        _ => {}
    }
    if let Some(left) = line.outstanding_fen()
        && amount_fen > left
    {
        return Err(FeeRefused::TooMuch {
            name: name.to_string(),
            allowed: left,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(name: &str, amount_fen: Option<u64>) -> FeeLine {
        FeeLine {
            name: name.into(),
            standard: "20元/证".into(),
            basis: "《居住证暂行条例》第十五条".into(),
            amount_fen,
        }
    }

    #[test]
    fn amounts_read_and_print_exactly() {
        for (text, fen) in [
            ("12.50", Some(1250)),
            ("12.5", Some(1250)),
            ("¥12", Some(1200)),
            ("￥0.05", Some(5)),
            (" 25.00 ", Some(2500)),
            ("0", Some(0)),
            ("12.505", None),
            ("-1", None),
            ("1e3", None),
            ("", None),
            (".5", None),
            ("12,50", None),
            ("9999999999", None),
        ] {
            assert_eq!(parse_yuan(text), fen, "{text:?}");
        }
        assert_eq!(yuan(1250), "¥12.50");
        assert_eq!(yuan(5), "¥0.05");
        assert_eq!(yuan(2500), "¥25.00");
    }

    /// (the item's lines, the line named, the amount, what the rule says).
    type RecordCase<'a> = (&'a [FeeLine], &'a str, u64, Result<(), FeeRefused>);

    #[test]
    fn a_record_needs_a_line_of_the_item_and_an_amount_it_allows() {
        let fixed = [line("工本费", Some(2000)), line("登记费", None)];
        let cases: [RecordCase<'_>; 7] = [
            (&fixed, "工本费", 2000, Ok(())),
            (&fixed, "工本费", 500, Ok(())),
            (&fixed, "登记费", 123_456, Ok(())),
            (&[], "工本费", 2000, Err(FeeRefused::NoFees)),
            (
                &fixed,
                "办证费",
                2000,
                Err(FeeRefused::UnknownLine {
                    name: "办证费".into(),
                }),
            ),
            (&fixed, "工本费", 0, Err(FeeRefused::Zero)),
            (
                &fixed,
                "工本费",
                2001,
                Err(FeeRefused::TooMuch {
                    name: "工本费".into(),
                    allowed: 2000,
                }),
            ),
        ];
        for (lines, name, amount, expected) in cases {
            assert_eq!(
                check_line(lines, name, amount).map(|_| ()),
                expected,
                "{name} {amount}"
            );
        }
        assert!(check_line(&fixed, "登记费", MAX_FEN + 1).is_err());
    }

    #[test]
    fn a_line_takes_one_payment_and_one_exemption_within_its_amount() {
        let mut fees = CaseFees::of(&[line("工本费", Some(2000)), line("登记费", None)]);
        assert_eq!(fees.unsettled().len(), 2);
        assert_eq!(fees.outstanding_fen(), 2000);
        fees.lines[0].exemption = Some(Exemption {
            event_id: "e1".into(),
            amount_fen: 500,
            reason: "低保户减半".into(),
            basis: "市政府文件".into(),
            staff: "w".into(),
            on: Date::from_ymd(2026, 12, 7).unwrap(),
        });
        let cases = [
            (Record::Payment, "工本费", 1500, Ok(())),
            (
                Record::Payment,
                "工本费",
                1501,
                Err(FeeRefused::TooMuch {
                    name: "工本费".into(),
                    allowed: 1500,
                }),
            ),
            (
                Record::Exemption,
                "工本费",
                100,
                Err(FeeRefused::AlreadyExempted {
                    name: "工本费".into(),
                }),
            ),
            (Record::Exemption, "登记费", 100, Ok(())),
        ];
        for (record, name, amount, expected) in cases {
            assert_eq!(
                check_against(&fees, record, name, amount),
                expected,
                "{record:?} {name} {amount}"
            );
        }
        fees.lines[0].payment = Some(Payment {
            event_id: "e2".into(),
            amount_fen: 1500,
            method: PayMethod::Mobile,
            receipt: "NO.0001".into(),
            staff: "w".into(),
            on: Date::from_ymd(2026, 12, 7).unwrap(),
        });
        assert_eq!(
            check_against(&fees, Record::Payment, "工本费", 1),
            Err(FeeRefused::AlreadyPaid {
                name: "工本费".into()
            })
        );
        assert!(fees.lines[0].settled());
        assert!(!fees.lines[1].settled());
        assert_eq!(fees.paid_fen(), 1500);
        assert_eq!(fees.exempt_fen(), 500);
        assert_eq!(fees.outstanding_fen(), 0);
        assert_eq!(fees.unsettled().len(), 1);
    }

    #[test]
    fn methods_round_trip() {
        for m in PayMethod::ALL {
            assert_eq!(PayMethod::parse(m.as_str()), Some(m));
            assert_eq!(
                serde_json::to_value(m).unwrap(),
                serde_json::Value::from(m.as_str())
            );
        }
        assert_eq!(PayMethod::parse("cheque"), None);
    }
}
