//! The command-line unit parsers on arbitrary text: no panic, and every accepted value is in range
//! (a rate positive and finite, a duration that formats and parses back to within rounding, a
//! model name that prints and parses back to the same model).
#![no_main]

use libfuzzer_sys::fuzz_target;
use queuelab_common::units::{format_duration, parse_count, parse_duration, parse_rate};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = parse_rate(s) {
        assert!(r.is_finite() && r > 0.0, "rate {r} from {s:?}");
    }
    let _ = parse_count(s);
    if let Ok(d) = parse_duration(s) {
        let shown = format_duration(d);
        assert!(parse_duration(&shown).is_ok(), "{shown:?} (from {s:?}) does not parse back");
    }
    let _ = s.parse::<queuelab_common::model::Servers>();
    if let Ok(k) = s.parse::<queuelab_common::model::Kendall>() {
        let shown = k.to_string();
        assert_eq!(shown.parse(), Ok(k), "{shown:?} (from {s:?}) does not parse back");
    }
    // `trace:FILE` reads a file and keeps it for the life of the process (a trace is loaded once,
    // at start-up): not for arbitrary input; the trace parser has its own tests.
    let names_a_trace = s
        .split_once(':')
        .is_some_and(|(kind, _)| kind.trim().eq_ignore_ascii_case("trace"));
    if !names_a_trace {
        let _ = s.parse::<queuelab_common::samplers::ServiceKind>();
    }
    let _ = s.parse::<queuelab_common::samplers::ArrivalKind>();
    // A rate profile: accepted only with a positive total, and it prints back to itself.
    if let Ok(p) = queuelab_common::profile::Profile::parse(s) {
        assert!(p.total() > 0.0 && p.mean().is_finite(), "{p} from {s:?}");
        let shown = p.to_string();
        assert_eq!(shown.parse().as_ref(), Ok(&p), "{shown:?} (from {s:?}) does not parse back");
        let t = p.inverse(0.5 * p.total());
        assert!(t.is_some_and(|t| (0.0..=p.duration().as_secs_f64()).contains(&t)), "{t:?}");
    }
});
