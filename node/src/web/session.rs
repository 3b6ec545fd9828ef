//! Staff sessions and the sign-in throttle, kept in memory (DESIGN §10).
//!
//! A session is a random 256-bit token in an HttpOnly, SameSite=Strict cookie; only its
//! SHA-256 is kept here, with the user, a CSRF token for the session's forms and the time
//! it was last used. Sessions end after `IDLE` without use, on sign-out, or when the node
//! restarts (counter workers sign in again; no write to the database per page view).
//!
//! The throttle counts failed sign-ins per account and per client address: after
//! `MAX_FAILURES` within `WINDOW` the account (or the address) is locked for `LOCK`. The
//! same throttle limits how many appointments one client address books (`book:` keys).

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::store::{Role, UserRecord};

/// A session ends after this long without a request.
pub const IDLE_MS: u64 = 30 * 60 * 1000;
/// Failed sign-ins allowed per account (or address) within [`WINDOW_MS`].
pub const MAX_FAILURES: u32 = 5;
pub const WINDOW_MS: u64 = 15 * 60 * 1000;
/// How long an account (or address) stays locked after too many failures.
pub const LOCK_MS: u64 = 15 * 60 * 1000;
/// Sessions kept at most; the least recently used goes first beyond this.
const MAX_SESSIONS: usize = 10_000;

/// A signed-in staff member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub user_id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub counter: String,
    /// Every form of this session carries it.
    pub csrf: String,
    /// A digest of the password hash at sign-in: a new password ends the session.
    pub credential: [u8; 32],
    last_seen_ms: u64,
}

/// All live sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    by_hash: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    /// Starts a session for `user`; returns the cookie token.
    pub fn start(&self, user: &UserRecord, credential: [u8; 32], now_ms: u64) -> String {
        let token = random_token();
        let session = Session {
            user_id: user.id,
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            role: user.role,
            counter: user.counter.clone(),
            csrf: random_token(),
            credential,
            last_seen_ms: now_ms,
        };
        let mut sessions = self.by_hash.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, s| now_ms.saturating_sub(s.last_seen_ms) < IDLE_MS);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.last_seen_ms)
                .map(|(k, _)| *k)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(hash(&token), session);
        token
    }

    /// The session of a cookie token, if it is live; marks it used.
    pub fn touch(&self, token: &str, now_ms: u64) -> Option<Session> {
        let key = hash(token);
        let mut sessions = self.by_hash.lock().unwrap_or_else(|e| e.into_inner());
        let session = sessions.get_mut(&key)?;
        if now_ms.saturating_sub(session.last_seen_ms) >= IDLE_MS {
            sessions.remove(&key);
            return None;
        }
        session.last_seen_ms = now_ms;
        Some(session.clone())
    }

    pub fn end(&self, token: &str) {
        self.by_hash
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&hash(token));
    }

    /// Ends every session of a user (disabled account, new password).
    pub fn end_all_of(&self, user_id: i64) {
        self.by_hash
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, s| s.user_id != user_id);
    }
}

/// Failed sign-ins per account and per client address.
#[derive(Debug, Default)]
pub struct Throttle {
    by_key: Mutex<HashMap<String, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first_ms: u64,
    locked_until_ms: u64,
    /// Attempts whose password is being checked right now.
    in_flight: u32,
}

/// Failed sign-ins allowed per client address within [`WINDOW_MS`] (many staff may sign
/// in from one counter PC or behind one router, so more than per account).
pub const MAX_ADDRESS_FAILURES: u32 = 20;

/// Appointments one client address may book within [`WINDOW_MS`] (keys `book:ADDR`):
/// enough for a family or a helper at the station's own kiosk, too few to fill a day's
/// slots from one machine. Every booking attempt counts, successful or not.
pub const MAX_ADDRESS_BOOKINGS: u32 = 10;

fn limit_of(key: &str) -> u32 {
    if key.starts_with("addr:") || key.starts_with("cancel-addr:") {
        MAX_ADDRESS_FAILURES
    } else if key.starts_with("book:") {
        MAX_ADDRESS_BOOKINGS
    } else {
        MAX_FAILURES
    }
}

impl Throttle {
    /// Counts a failure; returns the lock's end when this one locks the key.
    pub fn fail(&self, key: &str, now_ms: u64) -> Option<u64> {
        let mut map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            // Bounded memory whatever is thrown at the sign-in form: drop only what no
            // longer counts (expired windows without a running lock or attempt).
            map.retain(|_, f| {
                f.locked_until_ms > now_ms
                    || f.in_flight > 0
                    || now_ms.saturating_sub(f.first_ms) <= WINDOW_MS
            });
        }
        let entry = map.entry(key.to_string()).or_insert(Failures {
            count: 0,
            first_ms: now_ms,
            locked_until_ms: 0,
            in_flight: 0,
        });
        if now_ms.saturating_sub(entry.first_ms) > WINDOW_MS {
            *entry = Failures {
                count: 0,
                first_ms: now_ms,
                locked_until_ms: 0,
                in_flight: entry.in_flight,
            };
        }
        entry.count += 1;
        if entry.count >= limit_of(key) {
            entry.locked_until_ms = now_ms + LOCK_MS;
            entry.count = 0;
            entry.first_ms = now_ms;
            return Some(entry.locked_until_ms);
        }
        None
    }

    /// Takes a slot for one sign-in attempt under every key (account, address), or says
    /// until when one of them is locked. Attempts in flight count as failures until they
    /// end, so a burst cannot exceed the limit. Every `Ok` must be followed by [`Throttle::end`].
    pub fn begin(&self, keys: &[String], now_ms: u64) -> Result<(), u64> {
        let mut map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys {
            if let Some(f) = map.get(key) {
                if f.locked_until_ms > now_ms {
                    return Err(f.locked_until_ms);
                }
                let counting = now_ms.saturating_sub(f.first_ms) <= WINDOW_MS;
                let used = if counting { f.count } else { 0 } + f.in_flight;
                if used >= limit_of(key) {
                    // Busy with attempts that may still fail: wait a little.
                    return Err(now_ms + 60_000);
                }
            }
        }
        for key in keys {
            map.entry(key.clone())
                .or_insert(Failures {
                    count: 0,
                    first_ms: now_ms,
                    locked_until_ms: 0,
                    in_flight: 0,
                })
                .in_flight += 1;
        }
        Ok(())
    }

    /// Ends an attempt begun with [`Throttle::begin`]: on success (`succeeded` names the
    /// account) that account's count is cleared; on failure every key counts it. Returns
    /// the lock's end when this failure locks a key.
    pub fn end(&self, keys: &[String], succeeded: Option<&str>, now_ms: u64) -> Option<u64> {
        {
            let mut map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
            for key in keys {
                if let Some(f) = map.get_mut(key) {
                    f.in_flight = f.in_flight.saturating_sub(1);
                }
            }
        }
        match succeeded {
            Some(account) => {
                self.clear(account);
                None
            }
            None => keys.iter().filter_map(|key| self.fail(key, now_ms)).max(),
        }
    }

    pub fn clear(&self, key: &str) {
        let mut map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = map.get_mut(key) {
            f.count = 0;
            f.locked_until_ms = 0;
            if f.in_flight == 0 {
                map.remove(key);
            }
        }
    }
}

/// Application forms already submitted: form id → case id. A form carries a fresh id;
/// sending it again (double click, reload, flaky network) finds the case made the first
/// time instead of making a second one.
#[derive(Debug, Default)]
pub struct FormOnce {
    seen: Mutex<HashMap<String, String>>,
}

/// What a form id's submission may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The first submission: go ahead, then [`FormOnce::done`] or [`FormOnce::release`].
    New,
    /// Another submission of the same form is being handled right now.
    InProgress,
    /// Handled before: the case it made.
    Done(String),
}

impl FormOnce {
    /// Reserves a form id atomically, so two submissions at once make one case.
    pub fn claim(&self, form_id: &str) -> Claim {
        if form_id.is_empty() || form_id.len() > 128 {
            return Claim::New;
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        match seen.get(form_id) {
            Some(case_id) if case_id.is_empty() => Claim::InProgress,
            Some(case_id) => Claim::Done(case_id.clone()),
            None => {
                if seen.len() >= 10_000 {
                    // Bounded: keep only what is in progress; older forms are long closed.
                    seen.retain(|_, case_id| case_id.is_empty());
                }
                seen.insert(form_id.to_string(), String::new());
                Claim::New
            }
        }
    }

    /// The form made this case.
    pub fn done(&self, form_id: &str, case_id: String) {
        if !form_id.is_empty() {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.insert(form_id.to_string(), case_id);
        }
    }

    /// The submission made nothing (refused input): the form may be sent again.
    pub fn release(&self, form_id: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.get(form_id).is_some_and(String::is_empty) {
            seen.remove(form_id);
        }
    }
}

/// What a session keeps of the password hash it was opened with (never the hash itself).
pub fn credential_of(password_hash: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"yizhan-session-credential\0");
    hasher.update(password_hash.as_bytes());
    hasher.finalize().into()
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// 256 random bits as 64 hex digits.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    crate::accounts::fill_random(&mut bytes);
    yizhan_sync::ids::hex(&bytes)
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserRecord {
        UserRecord {
            id: 7,
            username: "li".into(),
            display_name: "李敏".into(),
            role: Role::Worker,
            counter: "1号窗口".into(),
            disabled: false,
            created_ms: 0,
        }
    }

    #[test]
    fn a_session_lives_while_used_and_ends_when_idle() {
        let sessions = Sessions::default();
        let token = sessions.start(&user(), [0; 32], 1_000);
        assert_eq!(
            sessions
                .touch(&token, 1_000 + IDLE_MS - 1)
                .unwrap()
                .username,
            "li"
        );
        // Used just now, so it lives another IDLE from here.
        assert!(sessions.touch(&token, 1_000 + 2 * IDLE_MS - 2).is_some());
        assert!(sessions.touch(&token, 1_000 + 4 * IDLE_MS).is_none());
        assert!(sessions.touch("not-a-token", 1_000).is_none());
    }

    #[test]
    fn sign_out_and_disabling_end_sessions() {
        let sessions = Sessions::default();
        let a = sessions.start(&user(), [0; 32], 0);
        let b = sessions.start(&user(), [0; 32], 0);
        assert_ne!(
            sessions.touch(&a, 1).unwrap().csrf,
            sessions.touch(&b, 1).unwrap().csrf
        );
        sessions.end(&a);
        assert!(sessions.touch(&a, 2).is_none());
        sessions.end_all_of(7);
        assert!(sessions.touch(&b, 2).is_none());
    }

    #[test]
    fn attempts_in_flight_count_against_the_limit() {
        let throttle = Throttle::default();
        let keys = vec!["user:li".to_string(), "addr:10.0.0.9".to_string()];
        // A burst: only as many attempts as the account may still fail get through.
        let admitted = (0..50).filter(|_| throttle.begin(&keys, 0).is_ok()).count();
        assert_eq!(admitted as u32, MAX_FAILURES);
        for _ in 0..admitted - 1 {
            assert_eq!(throttle.end(&keys, None, 1), None);
        }
        assert!(
            throttle.end(&keys, None, 1).is_some(),
            "the fifth failure locks"
        );
        assert!(throttle.begin(&keys, 2).is_err());
        // Another account from the same address still may try.
        let other = vec!["user:wang".to_string(), "addr:10.0.0.9".to_string()];
        assert!(throttle.begin(&other, 3).is_ok());
        assert_eq!(throttle.end(&other, Some("user:wang"), 3), None);
        // Many accounts from one address: the address locks too.
        let throttle = Throttle::default();
        for n in 0..MAX_ADDRESS_FAILURES {
            let keys = vec![format!("user:u{n}"), "addr:10.0.0.7".to_string()];
            assert!(throttle.begin(&keys, 0).is_ok());
            throttle.end(&keys, None, 0);
        }
        let fresh = vec!["user:new".to_string(), "addr:10.0.0.7".to_string()];
        assert!(throttle.begin(&fresh, 1).is_err());
    }

    #[test]
    fn bookings_per_address_are_limited() {
        let throttle = Throttle::default();
        let keys = vec!["book:10.0.0.5".to_string()];
        for _ in 0..MAX_ADDRESS_BOOKINGS {
            assert!(throttle.begin(&keys, 0).is_ok());
            throttle.end(&keys, None, 0);
        }
        assert_eq!(throttle.begin(&keys, 1), Err(LOCK_MS));
        // Another address books on.
        assert!(throttle.begin(&["book:10.0.0.6".to_string()], 1).is_ok());
        assert!(throttle.begin(&keys, LOCK_MS).is_ok());
    }

    #[test]
    fn a_form_is_claimed_once() {
        let forms = FormOnce::default();
        assert_eq!(forms.claim("f1"), Claim::New);
        assert_eq!(forms.claim("f1"), Claim::InProgress);
        forms.done("f1", "c-1".into());
        assert_eq!(forms.claim("f1"), Claim::Done("c-1".into()));
        assert_eq!(forms.claim("f2"), Claim::New);
        forms.release("f2");
        assert_eq!(forms.claim("f2"), Claim::New);
    }

    #[test]
    fn the_throttle_locks_after_repeated_failures_for_a_while() {
        let throttle = Throttle::default();
        for n in 1..MAX_FAILURES {
            assert_eq!(throttle.fail("user:li", u64::from(n)), None);
        }
        let until = throttle.fail("user:li", 10).unwrap();
        assert_eq!(until, 10 + LOCK_MS);
        let li = ["user:li".to_string()];
        assert_eq!(throttle.begin(&li, 11), Err(until));
        assert_eq!(throttle.begin(&li, until), Ok(()));
        // Failures spread beyond the window do not add up.
        let throttle = Throttle::default();
        for n in 0..10 {
            assert_eq!(throttle.fail("user:wang", n * (WINDOW_MS + 1)), None);
        }
        // A success clears the count.
        for n in 0..10 {
            assert_eq!(throttle.fail("user:zhao", n), None);
            if n % 2 == 1 {
                throttle.clear("user:zhao");
            }
        }
        assert!(
            same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("ab", "abc")
        );
    }
}
