//! The applicant's query code (查询码): eight characters printed on every notice of a
//! case, which an applicant types on `/status` with the last four digits of the phone.
//!
//! The 52-character serial number is not something a person types on a phone, and a case
//! awaiting materials has none yet. The query code is derived from the case's document id
//! alone, by a hash every node computes alike, so every node that holds the case answers
//! it, offline, without anything to assign or sync.
//!
//! * **Alphabet**: `34679ACDEFGHJKMNPQRTWXY`, 23 characters without 0/O, 1/I/L, 2/Z,
//!   5/S, 8/B and U/V, so a code read from paper or over the phone is never mistaken.
//!   Lower case is accepted and read as upper case; spaces and dashes are ignored.
//! * **Body**: seven characters from SHA-256(`yizhan-query-v1\0` + case id): 23⁷ ≈ 3.4 ×
//!   10⁹ values. A code is not unique among a hall's cases on its own (a million cases
//!   hold about 150 pairs); with the phone digits a lookup matches one case.
//! * **Check character**: the eighth makes Σ wᵢ·vᵢ ≡ 0 (mod 23) over the values vᵢ of all
//!   eight characters with the weights 2, 3, …, 8 and 1. Since 23 is prime and the
//!   weights differ, it catches every single wrong character and every swap of two
//!   different neighbours, so a typo says "not a query code" instead of finding nothing
//!   (or another case).

use sha2::{Digest, Sha256};

/// The characters of query codes, in check-value order.
pub const ALPHABET: &[u8; 23] = b"34679ACDEFGHJKMNPQRTWXY";
/// Characters of a code, check character included.
pub const LEN: usize = 8;

/// The query code of the case with document id `case_id`.
pub fn of_case(case_id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"yizhan-query-v1\0");
    hasher.update(case_id.as_bytes());
    let digest: [u8; 32] = hasher.finalize().into();
    let mut number = u64::from_be_bytes(digest[..8].try_into().expect("eight bytes"));
    let mut values = [0u8; LEN - 1];
    for value in values.iter_mut() {
        *value = (number % M as u64) as u8;
        number /= M as u64;
    }
    let mut code: String = values
        .iter()
        .map(|v| ALPHABET[*v as usize] as char)
        .collect();
    code.push(ALPHABET[check_value(&values) as usize] as char);
    code
}

/// A code as typed (spaces and dashes dropped, upper case), if it is a well-formed query
/// code with the right check character.
pub fn normalize(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if code.len() != LEN {
        return None;
    }
    let values: Vec<u8> = code
        .bytes()
        .map(|b| ALPHABET.iter().position(|a| *a == b).map(|p| p as u8))
        .collect::<Option<_>>()?;
    (check_value(&values[..LEN - 1]) == values[LEN - 1]).then_some(code)
}

/// The modulus of the check: the alphabet's size, a prime.
const M: u32 = ALPHABET.len() as u32;

/// The check value of the seven body values: what makes the weighted sum 0 modulo 23.
fn check_value(values: &[u8]) -> u8 {
    let sum: u32 = values
        .iter()
        .enumerate()
        .map(|(i, v)| (i as u32 + 2) * u32::from(*v))
        .sum();
    ((M - sum % M) % M) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_always_has_the_same_code_and_it_reads_back() {
        let id = "c-00019a3f4b2c0000-0707070707070707070707070707070707";
        let code = of_case(id);
        assert_eq!(code, of_case(id));
        assert_eq!(code.len(), LEN);
        assert!(code.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
        assert_eq!(normalize(&code), Some(code.clone()));
        let spaced = format!(" {}-{} ", &code[..4], &code[4..]).to_lowercase();
        assert_eq!(normalize(&spaced), Some(code.clone()));
        assert_ne!(of_case("c-00019a3f4b2c0001-07"), code);
    }

    /// Every single wrong character and every swap of two different neighbours is caught,
    /// over many codes.
    #[test]
    fn the_check_character_catches_typos_and_swaps() {
        for n in 0..300 {
            let code = of_case(&format!("c-{n:016x}-01"));
            let bytes = code.as_bytes();
            for i in 0..LEN {
                for a in ALPHABET.iter().filter(|a| **a != bytes[i]) {
                    let mut typo = bytes.to_vec();
                    typo[i] = *a;
                    let typo = String::from_utf8(typo).unwrap();
                    assert_eq!(normalize(&typo), None, "{code} → {typo}");
                }
                if i + 1 < LEN && bytes[i] != bytes[i + 1] {
                    let mut swapped = bytes.to_vec();
                    swapped.swap(i, i + 1);
                    let swapped = String::from_utf8(swapped).unwrap();
                    assert_eq!(normalize(&swapped), None, "{code} → {swapped}");
                }
            }
        }
        for bad in ["", "ABC", "0OIL1258", "ACDEFGHJK"] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }
}
