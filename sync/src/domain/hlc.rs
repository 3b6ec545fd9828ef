//! Hybrid logical clock (HLC) for event times.
//!
//! Events from many nodes are ordered by their HLC time: close to wall-clock time, but
//! strictly increasing on each node and never behind any event the node has already seen,
//! so an event made after reading another always sorts after it even when clocks drift.

use std::fmt;

/// An HLC timestamp: milliseconds since the Unix epoch in the high 48 bits and a logical
/// counter in the low 16 bits. Plain integer order is causal order per node.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hlc(pub u64);

impl Hlc {
    const COUNTER_BITS: u32 = 16;

    pub fn new(unix_ms: u64, counter: u16) -> Hlc {
        Hlc(unix_ms << Self::COUNTER_BITS | u64::from(counter))
    }

    pub fn unix_ms(self) -> u64 {
        self.0 >> Self::COUNTER_BITS
    }

    pub fn counter(self) -> u16 {
        (self.0 & 0xffff) as u16
    }

    /// Fixed-width hex, so that string order equals time order.
    pub fn to_hex(self) -> String {
        format!("{:016x}", self.0)
    }

    pub fn parse_hex(s: &str) -> Option<Hlc> {
        (s.len() == 16).then(|| u64::from_str_radix(s, 16).ok().map(Hlc))?
    }
}

impl fmt::Debug for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hlc({}+{})", self.unix_ms(), self.counter())
    }
}

// Serialized as fixed-width hex: JSON readers in browsers lose precision on integers
// above 2^53, and HLC values are near 2^57.
impl serde::Serialize for Hlc {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Hlc {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Hlc, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Hlc::parse_hex(&s).ok_or_else(|| serde::de::Error::custom("an HLC time is 16 hex digits"))
    }
}

/// The clock state of one node.
#[derive(Clone, Copy, Debug, Default)]
pub struct HlcClock {
    last: Hlc,
}

impl HlcClock {
    /// A clock that will never issue a time at or before `last` (the newest time the node
    /// has stored, so a restart never goes back even if the wall clock did).
    pub fn starting_after(last: Hlc) -> HlcClock {
        HlcClock { last }
    }

    /// A new time for a local event, given the wall clock.
    pub fn tick(&mut self, wall_ms: u64) -> Hlc {
        let wall = Hlc::new(wall_ms, 0);
        self.last = if wall > self.last {
            wall
        } else {
            Hlc(self.last.0 + 1)
        };
        self.last
    }

    /// Takes note of a time seen in a remote event.
    pub fn observe(&mut self, seen: Hlc) {
        self.last = self.last.max(seen);
    }

    pub fn last(&self) -> Hlc {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_strictly_increasing_even_when_the_wall_clock_goes_back() {
        let mut clock = HlcClock::default();
        let a = clock.tick(1_000);
        let b = clock.tick(1_000);
        let c = clock.tick(900);
        let d = clock.tick(2_000);
        assert!(a < b && b < c && c < d);
        assert_eq!((b.unix_ms(), b.counter()), (1_000, 1));
        assert_eq!((c.unix_ms(), c.counter()), (1_000, 2));
        assert_eq!((d.unix_ms(), d.counter()), (2_000, 0));
    }

    #[test]
    fn observed_times_are_never_passed_backwards() {
        let mut clock = HlcClock::default();
        clock.observe(Hlc::new(5_000, 3));
        let t = clock.tick(1_000);
        assert_eq!((t.unix_ms(), t.counter()), (5_000, 4));
        let restarted = HlcClock::starting_after(t).tick(10);
        assert!(restarted > t);
    }

    #[test]
    fn hex_form_sorts_like_the_time() {
        let times = [
            Hlc::new(1, 0),
            Hlc::new(1, 65535),
            Hlc::new(2, 0),
            Hlc::new(1 << 40, 7),
        ];
        for pair in times.windows(2) {
            assert!(pair[0].to_hex() < pair[1].to_hex());
            assert_eq!(Hlc::parse_hex(&pair[1].to_hex()), Some(pair[1]));
        }
        assert_eq!(Hlc::parse_hex("123"), None);
    }
}
