//! Staff sessions, the sign-in throttle and the booking limits, kept in memory (DESIGN
//! §10).
//!
//! A session is a random 256-bit token in an HttpOnly, SameSite=Strict cookie; only its
//! SHA-256 is kept here, with the user, a CSRF token for the session's forms and the time
//! it was last used. Sessions end after `IDLE` without use, on sign-out, or when the node
//! restarts (counter workers sign in again; no write to the database per page view).
//!
//! Sign-in ([`Guesses`]) slows guessing down and never locks the real user out: failures
//! count per account from one address, per address and per account, and each key that
//! failed more than a few times makes the next attempt wait, doubling up to a cap; nothing
//! is ever locked for a fixed time. A browser that signed in to an account before carries
//! a long-lived device cookie signed by the node ([`Device`]); its attempts count only
//! against that device, so an attacker's failures from elsewhere never slow it.
//!
//! [`Throttle`] caps attempts per key in a window: appointments booked per address
//! (`book:` keys) and cancellations tried per booking and address.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::store::{Role, UserRecord};

/// A session ends after this long without a request.
pub const IDLE_MS: u64 = 30 * 60 * 1000;
/// Failed cancellations allowed per booking and address within [`WINDOW_MS`].
pub const MAX_FAILURES: u32 = 5;
pub const WINDOW_MS: u64 = 15 * 60 * 1000;
/// How long a key of the [`Throttle`] waits after reaching its limit.
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

/// Attempts per key within [`WINDOW_MS`]: bookings per address, cancellations per
/// booking and address.
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

/// Failed cancellations allowed per client address within [`WINDOW_MS`], whatever the
/// booking.
pub const MAX_ADDRESS_FAILURES: u32 = 20;

/// Appointments one client address may book within [`WINDOW_MS`] (keys `book:ADDR`):
/// enough for a family or a helper at the station's own kiosk, too few to fill a day's
/// slots from one machine. Every booking attempt counts, successful or not.
pub const MAX_ADDRESS_BOOKINGS: u32 = 10;

fn limit_of(key: &str) -> u32 {
    if key.starts_with("cancel-addr:") {
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

/// How fast failures slow a key down: the first `free` failures cost nothing, then each
/// makes the next attempt wait `first_ms`, doubling, up to `max_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    pub free: u32,
    pub first_ms: u64,
    pub max_ms: u64,
}

impl Pace {
    /// The wait before the next attempt after `failures` failures in a row.
    pub fn delay_ms(&self, failures: u32) -> u64 {
        if failures < self.free {
            return 0;
        }
        let doublings = (failures - self.free).min(32);
        self.first_ms
            .saturating_mul(1 << doublings)
            .min(self.max_ms)
    }
}

/// One account from one address, or from one known device: the real user mistyping is
/// not stopped; a guesser gets one try a quarter hour after about fifteen.
pub const PER_ACCOUNT_AND_PLACE: Pace = Pace {
    free: 5,
    first_ms: 1_000,
    max_ms: 15 * 60 * 1000,
};
/// One address, whatever the account (many staff may sign in from one counter PC or
/// behind one router, so more than per account): slows spraying many accounts.
pub const PER_ADDRESS: Pace = Pace {
    free: 20,
    first_ms: 1_000,
    max_ms: 15 * 60 * 1000,
};
/// One account from every address but its known devices: slows guessing from many
/// addresses at once; the user on a browser they signed in with before never sees it.
pub const PER_ACCOUNT: Pace = Pace {
    free: 10,
    first_ms: 1_000,
    max_ms: 5 * 60 * 1000,
};
/// Failures are forgotten after this long without another (longer than any wait).
pub const FORGET_MS: u64 = 60 * 60 * 1000;

/// A sign-in attempt's keys: whose failures it counts against and how fast each slows.
pub type Keys = Vec<(String, Pace)>;

/// The keys of a sign-in attempt for `username` from `address`, or from a browser known
/// to have signed in to that account before (`device`, its id).
pub fn sign_in_keys(
    username: &str,
    address: Option<std::net::IpAddr>,
    device: Option<&str>,
) -> Keys {
    match device {
        // A known browser: only its own failures slow it.
        Some(device) => vec![(format!("device:{device}:{username}"), PER_ACCOUNT_AND_PLACE)],
        None => {
            // Whatever is typed as a name, the keys stay short.
            let username: String = username.chars().take(64).collect();
            let place = address_key(address);
            vec![
                (format!("pair:{username}@{place}"), PER_ACCOUNT_AND_PLACE),
                (format!("addr:{place}"), PER_ADDRESS),
                (format!("user:{username}"), PER_ACCOUNT),
            ]
        }
    }
}

/// How a sign-in attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    Succeeded,
    /// A wrong password, an unknown or disabled account.
    Failed,
    /// The node could not check it (a store error): it counts for nothing.
    Unchecked,
}

/// Failed sign-ins per key, with growing waits instead of locks.
#[derive(Debug, Default)]
pub struct Guesses {
    by_key: Mutex<HashMap<String, Strikes>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Strikes {
    /// Failures in a row, not yet forgotten.
    failures: u32,
    /// When the last attempt under this key began or failed.
    last_ms: u64,
    /// Attempts whose password is being checked right now (they count as failures until
    /// they end, so a burst cannot outrun the waits).
    in_flight: u32,
}

impl Strikes {
    fn counted(&self, now_ms: u64) -> u32 {
        let forgotten = self.in_flight == 0 && now_ms.saturating_sub(self.last_ms) > FORGET_MS;
        if forgotten { 0 } else { self.failures }
    }

    /// When the next attempt may begin.
    fn next_ms(&self, pace: Pace, now_ms: u64) -> u64 {
        let failures = self.counted(now_ms) + self.in_flight;
        match pace.delay_ms(failures) {
            0 => 0,
            wait => self.last_ms + wait,
        }
    }
}

impl Guesses {
    /// Takes a slot for one attempt under every key, or says until when the slowest key
    /// must wait. Every `Ok` must be followed by [`Guesses::end`].
    pub fn begin(&self, keys: &[(String, Pace)], now_ms: u64) -> Result<(), u64> {
        let mut map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            // Bounded memory whatever is thrown at the form: drop what no longer counts.
            map.retain(|_, s| s.in_flight > 0 || now_ms.saturating_sub(s.last_ms) <= FORGET_MS);
        }
        let until = keys
            .iter()
            .filter_map(|(key, pace)| map.get(key).map(|s| s.next_ms(*pace, now_ms)))
            .max()
            .unwrap_or(0);
        if until > now_ms {
            return Err(until);
        }
        for (key, _) in keys {
            let strikes = map.entry(key.clone()).or_default();
            strikes.failures = strikes.counted(now_ms);
            strikes.in_flight += 1;
            strikes.last_ms = now_ms;
        }
        Ok(())
    }

    /// Ends an attempt begun with [`Guesses::begin`]. A failure counts under every key;
    /// a success clears the first key (the account from this place or device) and counts
    /// nothing; an attempt that could not be checked counts nothing. Returns until when
    /// the next attempt must wait, if it must.
    pub fn end(&self, keys: &[(String, Pace)], outcome: Attempt, now_ms: u64) -> Option<u64> {
        let mut map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        for (n, (key, _)) in keys.iter().enumerate() {
            let strikes = map.entry(key.clone()).or_default();
            strikes.in_flight = strikes.in_flight.saturating_sub(1);
            match outcome {
                Attempt::Failed => {
                    strikes.failures = strikes.counted(now_ms) + 1;
                    strikes.last_ms = now_ms;
                }
                Attempt::Succeeded if n == 0 => strikes.failures = 0,
                Attempt::Succeeded | Attempt::Unchecked => {}
            }
        }
        keys.iter()
            .filter_map(|(key, pace)| map.get(key).map(|s| s.next_ms(*pace, now_ms)))
            .max()
            .filter(|until| *until > now_ms)
    }
}

/// The key an address counts under: IPv6 clients by their /64, which one household or
/// phone can fill with addresses at will; IPv4-mapped addresses as IPv4.
pub fn address_key(client: Option<std::net::IpAddr>) -> String {
    match client {
        None => "unknown".to_string(),
        Some(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Some(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// A browser known to this node: it signed in to these accounts before. Carried in a
/// long-lived cookie the node signs (HMAC-SHA-256 under a key derived from the node key,
/// so it survives restarts), never stored on the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// 128 random bits, in hex.
    pub id: String,
    /// The accounts signed in from it, newest last (at most [`Device::MAX_ACCOUNTS`]).
    pub accounts: Vec<String>,
}

impl Device {
    /// Accounts one browser remembers (a counter PC shared by a few staff).
    pub const MAX_ACCOUNTS: usize = 8;
    /// How long the cookie lives: half a year.
    pub const MAX_AGE_SECS: u64 = 180 * 24 * 3600;

    /// A new browser.
    pub fn new() -> Device {
        let mut bytes = [0u8; 16];
        crate::accounts::fill_random(&mut bytes);
        Device {
            id: yizhan_sync::ids::hex(&bytes),
            accounts: Vec::new(),
        }
    }

    /// The device with `username` remembered (moved to the end if it was there).
    pub fn with_account(mut self, username: &str) -> Device {
        self.accounts.retain(|a| a != username);
        self.accounts.push(username.to_string());
        let excess = self.accounts.len().saturating_sub(Device::MAX_ACCOUNTS);
        self.accounts.drain(..excess);
        self
    }

    /// Whether `username` signed in from this browser before.
    pub fn knows(&self, username: &str) -> bool {
        self.accounts.iter().any(|a| a == username)
    }

    /// The cookie value: `v1.ID.ACCOUNTS.MAC`.
    pub fn to_cookie(&self, key: &crate::identity::NodeKey) -> String {
        let body = format!("v1.{}.{}", self.id, self.accounts.join(","));
        let mac = yizhan_sync::ids::hex(&hmac_sha256(&device_key(key), body.as_bytes()));
        format!("{body}.{mac}")
    }

    /// The device a cookie names, if the node signed it.
    pub fn from_cookie(value: &str, key: &crate::identity::NodeKey) -> Option<Device> {
        let (body, mac) = value.rsplit_once('.')?;
        let expected = yizhan_sync::ids::hex(&hmac_sha256(&device_key(key), body.as_bytes()));
        if !same_secret(&expected, mac) {
            return None;
        }
        let mut parts = body.splitn(3, '.');
        let (version, id, accounts) = (parts.next()?, parts.next()?, parts.next()?);
        (version == "v1" && id.len() == 32).then(|| Device {
            id: id.to_string(),
            accounts: accounts
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }
}

impl Default for Device {
    fn default() -> Device {
        Device::new()
    }
}

/// The device cookies' MAC key: derived from the node key (an Ed25519 signature is
/// deterministic and needs the private key), so no extra secret is kept on disk.
fn device_key(key: &crate::identity::NodeKey) -> [u8; 32] {
    Sha256::digest(key.sign(b"yizhan device cookie key v1")).into()
}

/// HMAC-SHA-256 (RFC 2104).
fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let mut inner = Sha256::new();
    let mut outer = Sha256::new();
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
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
    fn waits_grow_by_doubling_up_to_a_cap() {
        let pace = Pace {
            free: 3,
            first_ms: 1_000,
            max_ms: 10_000,
        };
        for (failures, wait) in [
            (0, 0),
            (2, 0),
            (3, 1_000),
            (4, 2_000),
            (5, 4_000),
            (6, 8_000),
            (7, 10_000),
            (40, 10_000),
            (u32::MAX, 10_000),
        ] {
            assert_eq!(pace.delay_ms(failures), wait, "{failures} failures");
        }
    }

    const USER: &str = "li";
    const HOME: &str = "10.0.0.5";
    const THIEF: &str = "192.0.2.66";

    fn ip(s: &str) -> Option<std::net::IpAddr> {
        Some(s.parse().unwrap())
    }

    /// Begins and ends one attempt; `Err(wait)` when it was not let in.
    fn attempt(g: &Guesses, keys: &Keys, now: u64, outcome: Attempt) -> Result<(), u64> {
        g.begin(keys, now).map_err(|until| until - now)?;
        g.end(keys, outcome, now);
        Ok(())
    }

    /// `n` failures on `account` from `address`, each as soon as it is let in; returns
    /// the time after the last.
    fn guess(g: &Guesses, account: &str, address: &str, n: u32, mut now: u64) -> u64 {
        let keys = sign_in_keys(account, ip(address), None);
        for _ in 0..n {
            if let Err(wait) = attempt(g, &keys, now, Attempt::Failed) {
                now += wait;
                attempt(g, &keys, now, Attempt::Failed).unwrap();
            }
        }
        now
    }

    /// What an attacker did first, then whether (and after how long a wait) the real
    /// user's next attempt is let in.
    #[test]
    fn others_failures_slow_the_real_user_only_where_they_share_a_key() {
        type Setup = fn(&Guesses) -> u64;
        let device = "0123456789abcdef0123456789abcdef";
        // (what happened, the user's keys, expected: None = let in, Some(wait) = waits)
        let table: Vec<(&str, Setup, Keys, Option<u64>)> = vec![
            (
                "the user mistyped four times",
                |g| guess(g, USER, HOME, 4, 0),
                sign_in_keys(USER, ip(HOME), None),
                None,
            ),
            (
                "the user mistyped five times: a second's wait",
                |g| guess(g, USER, HOME, 5, 0),
                sign_in_keys(USER, ip(HOME), None),
                Some(1_000),
            ),
            (
                "a thief guessed from elsewhere, five times",
                |g| guess(g, USER, THIEF, 5, 0),
                sign_in_keys(USER, ip(HOME), None),
                None,
            ),
            (
                "a thief guessed 30 times from elsewhere: a new browser waits, not locked",
                |g| guess(g, USER, THIEF, 30, 0),
                sign_in_keys(USER, ip(HOME), None),
                Some(PER_ACCOUNT.max_ms),
            ),
            (
                "a thief guessed 30 times from elsewhere: a known browser does not wait",
                |g| guess(g, USER, THIEF, 30, 0),
                sign_in_keys(USER, ip(HOME), Some(device)),
                None,
            ),
            (
                "a thief guessed 30 times from the user's own address: a known browser does not wait",
                |g| guess(g, USER, HOME, 30, 0),
                sign_in_keys(USER, ip(HOME), Some(device)),
                None,
            ),
            (
                "a thief sprayed 25 accounts from one address: others there wait",
                |g| (0..25).fold(0, |now, n| guess(g, &format!("u{n}"), THIEF, 1, now)),
                sign_in_keys("wang", ip(THIEF), None),
                Some(32_000),
            ),
            (
                "a thief sprayed 25 accounts from one address: other addresses do not",
                |g| (0..25).fold(0, |now, n| guess(g, &format!("u{n}"), THIEF, 1, now)),
                sign_in_keys("wang", ip(HOME), None),
                None,
            ),
            (
                "guesses from one IPv6 /64 count together",
                |g| guess(g, USER, "2001:db8:1:2::1", 5, 0),
                sign_in_keys(USER, ip("2001:db8:1:2:ffff::9"), None),
                Some(1_000),
            ),
            (
                "failures an hour old are forgotten",
                |g| guess(g, USER, HOME, 30, 0) + FORGET_MS + PER_ACCOUNT_AND_PLACE.max_ms,
                sign_in_keys(USER, ip(HOME), None),
                None,
            ),
        ];
        for (what, setup, keys, expected) in table {
            let g = Guesses::default();
            let after = setup(&g);
            // The probe comes right after the last failure (or the setup's time).
            let got = g.begin(&keys, after).err().map(|until| until - after);
            assert_eq!(got, expected, "{what}");
        }
    }

    #[test]
    fn a_success_clears_the_users_own_count_and_a_burst_cannot_outrun_the_waits() {
        let g = Guesses::default();
        let keys = sign_in_keys(USER, ip(HOME), None);
        // Fifty attempts at once: only the free ones are let in while they run.
        let admitted = (0..50).filter(|_| g.begin(&keys, 0).is_ok()).count();
        assert_eq!(admitted as u32, PER_ACCOUNT_AND_PLACE.free);
        for _ in 0..admitted {
            g.end(&keys, Attempt::Failed, 0);
        }
        assert_eq!(g.begin(&keys, 0), Err(1_000));
        assert_eq!(attempt(&g, &keys, 1_000, Attempt::Succeeded), Ok(()));
        // The success cleared the account-from-here count: the next typo costs nothing.
        assert_eq!(attempt(&g, &keys, 1_000, Attempt::Failed), Ok(()));
        assert_eq!(attempt(&g, &keys, 1_000, Attempt::Failed), Ok(()));
        // An attempt the node could not check counts for nothing.
        let other = sign_in_keys("wang", ip(HOME), None);
        for _ in 0..20 {
            assert_eq!(attempt(&g, &other, 2_000, Attempt::Unchecked), Ok(()));
        }
    }

    #[test]
    fn device_cookies_are_signed_by_the_node_and_remember_a_few_accounts() {
        let key = crate::identity::NodeKey::from_seed([3; 32]);
        let device = Device::new().with_account("li").with_account("wang");
        let cookie = device.to_cookie(&key);
        let read = Device::from_cookie(&cookie, &key).unwrap();
        assert_eq!(read, device);
        assert!(read.knows("li") && !read.knows("zhao"));
        // Another node's key, or any edit, and it is no device.
        let other = crate::identity::NodeKey::from_seed([4; 32]);
        assert_eq!(Device::from_cookie(&cookie, &other), None);
        let forged = cookie.replace(".li,", ".zhao,");
        assert_eq!(Device::from_cookie(&forged, &key), None);
        assert_eq!(Device::from_cookie("v1.x.li.00", &key), None);
        assert_eq!(Device::from_cookie("", &key), None);
        // A shared counter PC remembers the last eight accounts.
        let many = (0..12).fold(Device::new(), |d, n| d.with_account(&format!("u{n}")));
        assert_eq!(many.accounts.len(), Device::MAX_ACCOUNTS);
        assert!(many.knows("u11") && !many.knows("u3"));
        // HMAC-SHA-256 itself: RFC 4231, test case 2.
        let mut jefe = [0u8; 32];
        jefe[..4].copy_from_slice(b"Jefe");
        assert_eq!(
            yizhan_sync::ids::hex(&hmac_sha256(&jefe, b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
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

    /// The booking throttle: a cap per window, then a wait.
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
