//! National ringing-tone (ringback) cadences, for SWML `ring:<cc>` / `ring:<seconds>:<cc>` and
//! the Calling API's `ringtone` media items.
//!
//! Values follow ITU-T E.180 Supplement 2 and the national tone plans as commonly published.
//! Several plans specify a carrier amplitude-modulated by a low frequency (e.g. Japan 400 Hz
//! × 16 Hz, India 400 Hz × 25 Hz); those are approximated by the carrier alone, which keeps
//! the cadence and pitch. Where a plan was not known with confidence the entry uses the
//! ITU-recommended ringing tone, 425 Hz 1 s on 4 s off, and says so.

/// One ringing cadence: the frequencies sounded together during "on" segments, and the
/// on/off segments of one cycle in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Cadence {
    /// Frequencies in Hz summed during "on" segments.
    pub freqs: Vec<f32>,
    /// `(on, duration_ms)` segments of one cycle.
    pub segments_ms: Vec<(bool, u64)>,
}

impl Cadence {
    /// Length of one cycle in ms (sum of the segments).
    pub fn cycle_ms(&self) -> u64 {
        self.segments_ms
            .iter()
            .fold(0u64, |acc, &(_, ms)| acc.saturating_add(ms))
    }
}

/// Names accepted by [`cadence`] (lower case): the SWML list, the extra Calling API ringtone
/// names whose cadence is known, and a few aliases (`gb` = `uk`, `kr` = `ko`).
pub const COUNTRIES: &[&str] = &[
    "at", "au", "be", "bg", "br", "ca", "ch", "cl", "cn", "cy", "cz", "de", "dk", "dz", "ee", "eg",
    "es", "fi", "fr", "gb", "gr", "hu", "il", "in", "it", "jp", "ko", "kr", "lt", "mx", "my", "nl",
    "no", "nz", "ph", "pk", "pl", "pt", "ro", "rs", "ru", "sa", "se", "sg", "th", "tr", "tw", "uk",
    "us", "us-old", "ve", "za",
];

/// A static tone plan entry.
struct Plan {
    freqs: &'static [f32],
    segments: &'static [(bool, u64)],
}

const fn single(on: u64, off: u64) -> [(bool, u64); 2] {
    [(true, on), (false, off)]
}

/// 0.4 on 0.2 off 0.4 on 2.0 off: the British-style double ring.
const DOUBLE: [(bool, u64); 4] = [(true, 400), (false, 200), (true, 400), (false, 2000)];
const ON1_OFF4: [(bool, u64); 2] = single(1000, 4000);
const ON1_OFF3: [(bool, u64); 2] = single(1000, 3000);
const ON1_OFF5: [(bool, u64); 2] = single(1000, 5000);
const ON1_OFF2: [(bool, u64); 2] = single(1000, 2000);
const ON2_OFF4: [(bool, u64); 2] = single(2000, 4000);

const F425: &[f32] = &[425.0];
const F400: &[f32] = &[400.0];
const F400_450: &[f32] = &[400.0, 450.0];
const F440_480: &[f32] = &[440.0, 480.0];

/// The ITU-T recommended ringing tone: 425 Hz, 1 s on 4 s off.
const ITU: Plan = Plan {
    freqs: F425,
    segments: &ON1_OFF4,
};

fn plan(name: &str) -> Option<Plan> {
    // Lower-case into a small stack buffer: every known name is at most 6 bytes.
    let mut buf = [0u8; 8];
    let bytes = name.as_bytes();
    if bytes.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(bytes) {
        *d = s.to_ascii_lowercase();
    }
    let Ok(key) = std::str::from_utf8(&buf[..bytes.len()]) else {
        return None;
    };
    let p = match key {
        // Austria: 420 Hz, 1 on 5 off.
        "at" => Plan {
            freqs: &[420.0],
            segments: &ON1_OFF5,
        },
        // Australia: 400+450 Hz (historically 400 Hz × 17 Hz), double ring.
        "au" => Plan {
            freqs: F400_450,
            segments: &DOUBLE,
        },
        // Belgium: 425 Hz, 1 on 3 off.
        "be" => Plan {
            freqs: F425,
            segments: &ON1_OFF3,
        },
        // Bulgaria, Brazil, Switzerland, Czechia, Germany, Denmark, Estonia, Finland, Greece,
        // Italy, Lithuania, Mexico, Netherlands, Norway, Poland, Serbia, Venezuela:
        // 425 Hz, 1 on 4 off.
        "bg" | "br" | "ch" | "cz" | "de" | "dk" | "ee" | "fi" | "gr" | "it" | "lt" | "mx"
        | "nl" => ITU,
        "no" | "pl" | "rs" | "ve" => ITU,
        // Canada: North American 440+480 Hz, 2 on 4 off.
        "ca" | "us" => Plan {
            freqs: F440_480,
            segments: &ON2_OFF4,
        },
        // Chile: 400 Hz, 1 on 3 off.
        "cl" => Plan {
            freqs: F400,
            segments: &ON1_OFF3,
        },
        // China: 450 Hz, 1 on 4 off.
        "cn" => Plan {
            freqs: &[450.0],
            segments: &ON1_OFF4,
        },
        // Spain: 425 Hz, 1.5 on 3 off.
        "es" => Plan {
            freqs: F425,
            segments: &[(true, 1500), (false, 3000)],
        },
        // France: 440 Hz, 1.5 on 3.5 off.
        "fr" => Plan {
            freqs: &[440.0],
            segments: &[(true, 1500), (false, 3500)],
        },
        // Hungary: 425 Hz, 1.25 on 3.75 off.
        "hu" => Plan {
            freqs: F425,
            segments: &[(true, 1250), (false, 3750)],
        },
        // Israel: 400 Hz, 1 on 3 off.
        "il" => Plan {
            freqs: F400,
            segments: &ON1_OFF3,
        },
        // India: 400 Hz × 25 Hz (carrier only), double ring.
        "in" => Plan {
            freqs: F400,
            segments: &DOUBLE,
        },
        // Japan: 400 Hz × 16 Hz (carrier only), 1 on 2 off.
        "jp" => Plan {
            freqs: F400,
            segments: &ON1_OFF2,
        },
        // South Korea: 440+480 Hz, 1 on 2 off.
        "ko" | "kr" => Plan {
            freqs: F440_480,
            segments: &ON1_OFF2,
        },
        // Malaysia: 425 Hz, double ring.
        "my" => Plan {
            freqs: F425,
            segments: &DOUBLE,
        },
        // New Zealand: 400+450 Hz, double ring.
        "nz" => Plan {
            freqs: F400_450,
            segments: &DOUBLE,
        },
        // Portugal: 425 Hz, 1 on 5 off.
        "pt" => Plan {
            freqs: F425,
            segments: &ON1_OFF5,
        },
        // Russia: 425 Hz, 0.8 on 3.2 off.
        "ru" => Plan {
            freqs: F425,
            segments: &[(true, 800), (false, 3200)],
        },
        // Sweden: 425 Hz, 1 on 5 off.
        "se" => Plan {
            freqs: F425,
            segments: &ON1_OFF5,
        },
        // Singapore: 425 Hz × 24 Hz (carrier only), double ring.
        "sg" => Plan {
            freqs: F425,
            segments: &DOUBLE,
        },
        // Thailand: 400 Hz, 1 on 4 off.
        "th" => Plan {
            freqs: F400,
            segments: &ON1_OFF4,
        },
        // Turkey: 450 Hz, 2 on 4 off.
        "tr" => Plan {
            freqs: &[450.0],
            segments: &ON2_OFF4,
        },
        // Taiwan: 440+480 Hz, 1 on 2 off.
        "tw" => Plan {
            freqs: F440_480,
            segments: &ON1_OFF2,
        },
        // United Kingdom: 400+450 Hz, double ring.
        "uk" | "gb" => Plan {
            freqs: F400_450,
            segments: &DOUBLE,
        },
        // Old Bell System ringback: 420 Hz × 40 Hz (carrier only), 2 on 4 off.
        "us-old" => Plan {
            freqs: &[420.0],
            segments: &ON2_OFF4,
        },
        // South Africa: 400 Hz × 33 Hz (carrier only), double ring.
        "za" => Plan {
            freqs: F400,
            segments: &DOUBLE,
        },
        // Not known with confidence; ITU-recommended 425 Hz 1 on 4 off: Cyprus, Algeria,
        // Egypt, Pakistan, Philippines, Romania, Saudi Arabia.
        "cy" | "dz" | "eg" | "pk" | "ph" | "ro" | "sa" => ITU,
        // `bong` (a Calling API ringtone name that is not a country) and anything else.
        _ => return None,
    };
    Some(p)
}

/// The ringing cadence of `country` (case-insensitive; see [`COUNTRIES`]), or `None` for an
/// unknown name.
pub fn cadence(country: &str) -> Option<Cadence> {
    plan(country.trim()).map(|p| Cadence {
        freqs: p.freqs.to_vec(),
        segments_ms: p.segments.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SWML_LIST: &str = "at au bg br be ch cl cn cz de dk ee es fi fr gr hu il in it lt jp \
                             mx my nl no nz ph pl pt ru se sg th uk us us-old tw ve za";
    const API_LIST: &str = "at au be bg br ca ch cl cn cy cz de dk dz ee eg es fi fr gr hu il \
                            in it jp ko lt mx my nl no nz ph pk pl pt ro rs ru sa se sg th tr \
                            tw uk us ve za";

    #[test]
    fn every_listed_country_has_a_cadence() {
        for cc in SWML_LIST
            .split_whitespace()
            .chain(API_LIST.split_whitespace())
        {
            let c = cadence(cc).unwrap_or_else(|| panic!("no cadence for {cc}"));
            assert!(!c.freqs.is_empty(), "{cc}");
            assert!(c.cycle_ms() > 0, "{cc}");
            assert!(c.segments_ms.iter().any(|&(on, ms)| on && ms > 0), "{cc}");
            assert!(COUNTRIES.contains(&cc), "{cc} missing from COUNTRIES");
        }
        for cc in COUNTRIES {
            assert!(cadence(cc).is_some(), "{cc}");
        }
    }

    #[test]
    fn case_insensitive_and_unknown() {
        assert_eq!(cadence("US"), cadence("us"));
        assert_eq!(cadence("Us-Old"), cadence("us-old"));
        assert_eq!(cadence("gb"), cadence("uk"));
        assert_eq!(cadence("xx"), None);
        assert_eq!(cadence(""), None);
        assert_eq!(cadence("bong"), None);
        assert_eq!(cadence("usa"), None);
    }

    #[test]
    fn known_plans() {
        let us = cadence("us").unwrap();
        assert_eq!(us.freqs, vec![440.0, 480.0]);
        assert_eq!(us.segments_ms, vec![(true, 2000), (false, 4000)]);
        assert_eq!(us.cycle_ms(), 6000);
        let uk = cadence("uk").unwrap();
        assert_eq!(uk.freqs, vec![400.0, 450.0]);
        assert_eq!(
            uk.segments_ms,
            vec![(true, 400), (false, 200), (true, 400), (false, 2000)]
        );
        assert_eq!(uk.cycle_ms(), 3000);
        let de = cadence("de").unwrap();
        assert_eq!(de.freqs, vec![425.0]);
        assert_eq!(de.cycle_ms(), 5000);
        let fr = cadence("fr").unwrap();
        assert_eq!(fr.freqs, vec![440.0]);
        assert_eq!(fr.segments_ms, vec![(true, 1500), (false, 3500)]);
        let jp = cadence("jp").unwrap();
        assert_eq!(jp.freqs, vec![400.0]);
        assert_eq!(jp.segments_ms, vec![(true, 1000), (false, 2000)]);
    }
}
