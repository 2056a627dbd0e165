//! `qserve --network`: the network model against the simulator's replay customer by customer, polls
//! that change nothing, Little's law per station, and a server with a network through sockets.
mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use queuelab_common::model::{Classes, Discipline, Model, Servers};
use queuelab_common::network::{Hop, Network, Station};
use queuelab_common::samplers::{ServiceKind, exp_sample, rng};
use queuelab_server::network::{
    DepartureGaps, End, MAX_VISITS, NetOutcome, NetPoll, NetTicket, NetworkModel, Route as NetRoute,
};
use queuelab_server::{Config, http};
use rand::RngExt;

use support::{connect, get, metric, read_response, server, wait_for_metrics};

use queuelab_common::sim::network::{NetFate, replay_network};

const END: u64 = u64::MAX / 4;

fn station(name: &str, model: Model) -> Station {
    Station {
        name: name.to_owned(),
        model,
    }
}

fn network(stations: Vec<Station>, entry: Vec<f64>, routing: Vec<Vec<f64>>) -> Network {
    let exit = routing
        .iter()
        .map(|r| 1.0 - r.iter().sum::<f64>())
        .collect();
    Network {
        stations,
        entry,
        routing,
        exit,
        classes: Default::default(),
    }
}

/// The network of the issue: web (μ 1000) sends half to db (μ 2000), db sends 30% back.
fn web_db() -> Network {
    network(
        vec![
            station("web", Model::new(1000.0, Servers::Finite(1))),
            station("db", Model::new(2000.0, Servers::Finite(1))),
        ],
        vec![1.0, 0.0],
        vec![vec![0.0, 0.5], vec![0.3, 0.0]],
    )
}

/// A tandem of three: two servers, infinitely many with H2 service, one constant server with
/// K = 3 (blocks).
fn tandem() -> Network {
    network(
        vec![
            station("a", Model::new(600.0, Servers::Finite(2))),
            station(
                "b",
                Model::new(300.0, Servers::Infinite).with_service(ServiceKind::H2 { cv2: 4.0 }),
            ),
            station(
                "c",
                Model::new(1000.0, Servers::Finite(1))
                    .with_service(ServiceKind::Const)
                    .with_capacity(Some(3)),
            ),
        ],
        vec![1.0, 0.0, 0.0],
        vec![vec![0.0, 1.0, 0.0], vec![0.0, 0.0, 1.0], vec![0.0; 3]],
    )
}

/// Feedback: one station back to itself with probability 0.6 (2.5 visits on average, often more
/// than MAX_VISITS), entry split with a second station of two servers and K = 4.
fn feedback() -> Network {
    network(
        vec![
            station(
                "loop",
                Model::new(4000.0, Servers::Finite(1)).with_capacity(Some(6)),
            ),
            station(
                "side",
                Model::new(500.0, Servers::Finite(2)).with_capacity(Some(4)),
            ),
        ],
        vec![0.7, 0.3],
        vec![vec![0.6, 0.1], vec![0.2, 0.0]],
    )
}

/// Every discipline with feedback, `c` servers at each event-driven station: processor sharing
/// (exp) at the entry, non-preemptive priority (H2, K = 5 with one server, 8 with two) that
/// blocks, preemptive priority (constant service) that feeds back to itself, LCFS (exp, K = 4
/// per server) and an FCFS station (decided at admission) that sends some back to the entry.
fn mixed(c: u32) -> Network {
    let f = f64::from(c);
    network(
        vec![
            station(
                "ps",
                Model::new(900.0 / f, Servers::Finite(c)).with_discipline(Discipline::Ps),
            ),
            station(
                "prio",
                Model::new(650.0 / f, Servers::Finite(c))
                    .with_discipline(Discipline::Priority)
                    .with_service(ServiceKind::H2 { cv2: 4.0 })
                    .with_capacity(Some(5 + 3 * (c - 1))),
            ),
            station(
                "pre",
                Model::new(350.0 / f, Servers::Finite(c))
                    .with_discipline(Discipline::PriorityPreemptive)
                    .with_service(ServiceKind::Const),
            ),
            station(
                "lcfs",
                Model::new(250.0 / f, Servers::Finite(c))
                    .with_discipline(Discipline::Lcfs)
                    .with_capacity(Some(4 * c)),
            ),
            station("fcfs", Model::new(200.0, Servers::Finite(1))),
        ],
        vec![0.7, 0.3, 0.0, 0.0, 0.0],
        vec![
            vec![0.0, 0.3, 0.3, 0.0, 0.0],
            vec![0.0, 0.0, 0.0, 0.4, 0.1],
            vec![0.0, 0.0, 0.2, 0.0, 0.4],
            vec![0.1, 0.0, 0.0, 0.0, 0.0],
            vec![0.15, 0.0, 0.0, 0.0, 0.0],
        ],
    )
}

/// The event-driven cases: (name, network, λ, arrivals).
fn mixed_cases() -> Vec<(&'static str, Network, f64, usize)> {
    vec![
        ("mixed c = 1", mixed(1), 900.0, 8_000),
        ("mixed c = 2", mixed(2), 900.0, 8_000),
    ]
}

/// The class an arrival names in the tests (`None`: the network's draw): every third names
/// one, cycling through 0, 1, 2.
fn named_class(i: usize) -> Option<u8> {
    (i % 3 == 0).then_some(((i / 3) % 3) as u8)
}

/// Poisson arrival times at `lambda`/s.
fn arrivals(n: usize, lambda: f64, seed: u64) -> Vec<u64> {
    let mut r = rng(seed, 4242);
    let mut t = 0u64;
    (0..n)
        .map(|_| {
            t += (exp_sample(1.0 / lambda, &mut r) * 1e9).round() as u64;
            t
        })
        .collect()
}

/// The model's fate of each arrival, as the reference's (the visits beyond MAX_VISITS are
/// only summed by the model: they are compared by count and sums).
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    end_ns: u64,
    blocked_at: Option<usize>,
    n_visits: u32,
    first: Vec<(usize, u64, u64, u64, u64)>,
    rest: (u64, u64),
}

fn from_reference(f: &NetFate) -> Seen {
    let (end_ns, blocked_at, visits) = match f {
        NetFate::Exited { at_ns, visits, .. } => (*at_ns, None, visits),
        NetFate::Blocked {
            at_ns,
            station,
            visits,
            ..
        } => (*at_ns, Some(*station), visits),
    };
    Seen {
        end_ns,
        blocked_at,
        n_visits: visits.len() as u32,
        first: visits
            .iter()
            .take(MAX_VISITS)
            .map(|v| {
                (
                    v.station,
                    v.arrive_ns,
                    v.start_ns,
                    v.depart_ns,
                    v.service_ns,
                )
            })
            .collect(),
        rest: visits.iter().skip(MAX_VISITS).fold((0, 0), |(w, s), v| {
            (w + v.start_ns - v.arrive_ns, s + v.service_ns)
        }),
    }
}

fn from_model(o: NetOutcome, polled: Option<NetPoll>, a: u64) -> Seen {
    let route = match (o, polled) {
        (NetOutcome::Refused(End::Blocked { station }), _) => {
            return Seen {
                end_ns: a,
                blocked_at: Some(usize::from(station)),
                n_visits: 0,
                first: Vec::new(),
                rest: (0, 0),
            };
        }
        (NetOutcome::Accepted(_), Some(NetPoll::Done(r))) => r,
        other => panic!("unexpected {other:?}"),
    };
    Seen {
        end_ns: route.end_ns,
        blocked_at: match route.end {
            End::Exited => None,
            End::Blocked { station } => Some(usize::from(station)),
            End::Overflow { .. } => panic!("overflow"),
        },
        n_visits: route.n_visits,
        first: route
            .kept()
            .iter()
            .map(|v| {
                (
                    usize::from(v.station),
                    v.arrive_ns,
                    v.start_ns,
                    v.depart_ns,
                    v.service_ns,
                )
            })
            .collect(),
        rest: (route.rest_wait_ns, route.rest_service_ns),
    }
}

/// The cases: (name, network, λ, arrivals).
fn cases() -> Vec<(&'static str, Network, f64, usize)> {
    vec![
        ("web/db", web_db(), 600.0, 20_000),
        ("tandem", tandem(), 850.0, 20_000),
        ("feedback", feedback(), 900.0, 20_000),
    ]
}

#[test]
fn the_model_is_the_reference_customer_by_customer() {
    for (name, net, lambda, n) in cases() {
        for seed in [1u64, 77] {
            let times = arrivals(n, lambda, seed);
            let want: Vec<Seen> = replay_network(&net, seed, &times, 1 << 30, None)
                .iter()
                .map(from_reference)
                .collect();
            let mut m = NetworkModel::new(&net, seed, 1 << 30);
            let outcomes: Vec<NetOutcome> = times.iter().map(|&a| m.arrive(a, None)).collect();
            let got: Vec<Seen> = outcomes
                .iter()
                .zip(&times)
                .map(|(&o, &a)| {
                    let polled = match o {
                        NetOutcome::Accepted(t) => Some(m.poll(t, END)),
                        NetOutcome::Refused(_) => None,
                    };
                    from_model(o, polled, a)
                })
                .collect();
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(g, w, "{name} seed {seed}: customer {i}");
            }
            // Every slot is free once every ticket has been answered.
            assert_eq!(m.slots_in_use(), 0, "{name}");
            // The cases exercise what they are meant to.
            let blocked = want.iter().filter(|s| s.blocked_at.is_some()).count();
            let late_block = want
                .iter()
                .filter(|s| s.blocked_at.is_some() && s.n_visits > 0)
                .count();
            let long = want
                .iter()
                .filter(|s| s.n_visits as usize > MAX_VISITS)
                .count();
            let waited = want
                .iter()
                .flat_map(|s| &s.first)
                .filter(|v| v.2 > v.1)
                .count();
            assert!(waited > n / 10, "{name}: only {waited} visits waited");
            match name {
                "tandem" => assert!(late_block > 100, "{name}: {late_block} blocked at c"),
                "feedback" => {
                    assert!(blocked > 100, "{name}: {blocked} blocked");
                    assert!(
                        long > 50,
                        "{name}: {long} with more than {MAX_VISITS} visits"
                    );
                }
                _ => {}
            }
        }
    }
}

#[test]
fn polls_between_events_change_nothing() {
    for (name, net, lambda, n) in cases().into_iter().chain(mixed_cases()) {
        let times = arrivals(n, lambda, 5);
        let mut quiet = NetworkModel::new(&net, 5, 1 << 30);
        let outs: Vec<NetOutcome> = times
            .iter()
            .enumerate()
            .map(|(i, &a)| quiet.arrive(a, named_class(i)))
            .collect();
        let want: Vec<Option<NetPoll>> = outs
            .iter()
            .map(|o| match *o {
                NetOutcome::Accepted(t) => Some(quiet.poll(t, END)),
                NetOutcome::Refused(_) => None,
            })
            .collect();
        let end_of = |i: usize| match want[i] {
            Some(NetPoll::Done(r)) => r.end_ns,
            _ => panic!("{name}: {i} not done"),
        };
        // Polled at random times between the arrivals, and read per station as a scrape does.
        let mut busy = NetworkModel::new(&net, 5, 1 << 30);
        let mut r = rng(3, 3);
        let mut open: Vec<(usize, NetTicket)> = Vec::new();
        let mut got: Vec<Option<NetPoll>> = vec![None; n];
        for (i, &a) in times.iter().enumerate() {
            let o = busy.arrive(a, named_class(i));
            // The same fate (the slot ids differ: the polls free slots earlier).
            let key = |o: NetOutcome| match o {
                NetOutcome::Accepted(t) => Ok(t.tentative_ns),
                NetOutcome::Refused(e) => Err(e),
            };
            assert_eq!(key(o), key(outs[i]), "{name}: outcome {i}");
            if let NetOutcome::Accepted(t) = o {
                assert!(
                    t.tentative_ns <= end_of(i),
                    "{name}: {i} tentative after the end"
                );
                open.push((i, t));
            }
            let next = times.get(i + 1).copied().unwrap_or(a + 1_000_000);
            for _ in 0..3 {
                if open.is_empty() {
                    break;
                }
                let now = a + (r.random::<f64>() * (next - a) as f64) as u64;
                let pick = ((r.random::<f64>() * open.len() as f64) as usize).min(open.len() - 1);
                let (j, t) = open[pick];
                match busy.poll(t, now) {
                    NetPoll::Done(route) => {
                        assert!(route.end_ns <= now, "{name}: {j} done in the future");
                        got[j] = Some(NetPoll::Done(route));
                        open.swap_remove(pick);
                    }
                    NetPoll::Pending(p) => {
                        assert!(p > now, "{name}: {j} pending in the past");
                        assert!(p <= end_of(j), "{name}: {j} pending after its end");
                    }
                    NetPoll::Unknown => panic!("{name}: {j} unknown"),
                }
                for s in 0..net.stations.len() {
                    let _ = busy.station_at(s, now);
                }
            }
        }
        for (j, t) in open {
            got[j] = Some(busy.poll(t, END));
        }
        assert_eq!(got, want, "{name}");
    }
}

/// Little's law on a finished sample path, per station, exactly: once every request has left,
/// ∫ N_j dt is the sum of the visits' sojourns at j, and the network's ∫ N dt (the sum over the
/// stations) is the sum of the exited requests' sojourns, in integer nanoseconds.
#[test]
fn littles_law_holds_per_station_on_the_model() {
    for (name, net, lambda, n) in cases().into_iter().chain(mixed_cases()) {
        let times = arrivals(n, lambda, 9);
        let mut m = NetworkModel::new(&net, 9, 1 << 30);
        let outs: Vec<NetOutcome> = times
            .iter()
            .enumerate()
            .map(|(i, &a)| m.arrive(a, named_class(i)))
            .collect();
        let mut end_to_end = 0u128;
        let mut visits = vec![0u64; net.stations.len()];
        let mut blocked = vec![0u64; net.stations.len()];
        let mut all_visits = 0u64;
        for o in outs {
            match o {
                NetOutcome::Accepted(t) => match m.poll(t, END) {
                    NetPoll::Done(r) => {
                        end_to_end += u128::from(r.sojourn_ns());
                        all_visits += u64::from(r.n_visits);
                        for v in r.kept() {
                            visits[usize::from(v.station)] += 1;
                        }
                        if let End::Blocked { station } = r.end {
                            blocked[usize::from(station)] += 1;
                        }
                    }
                    other => panic!("{name}: {other:?}"),
                },
                NetOutcome::Refused(End::Blocked { station }) => {
                    blocked[usize::from(station)] += 1;
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        let mut area = 0u128;
        let mut station_visits = 0u64;
        for j in 0..net.stations.len() {
            let (st, present, _, integral) = m.station_at(j, END);
            assert_eq!(present, 0, "{name}");
            assert_eq!(integral, st.sojourn_ns, "{name}: station {j}");
            assert_eq!(st.blocked, blocked[j], "{name}: blocked at {j}");
            if name == "tandem" {
                // (With feedback some visits are only counted, beyond MAX_VISITS.)
                assert_eq!(st.visits, visits[j], "{name}: visits at {j}");
            }
            area += integral;
            station_visits += st.visits;
        }
        assert_eq!(station_visits, all_visits, "{name}");
        // A blocked request's visits before the block count at the stations, not end to end.
        if name == "web/db" {
            assert_eq!(area, end_to_end, "{name}");
        } else {
            assert!(area >= end_to_end, "{name}");
        }
    }
}

#[test]
fn server_timing_lists_every_visit_and_sums_to_the_sojourn() {
    let net = feedback();
    let times = arrivals(5_000, 900.0, 2);
    let mut m = NetworkModel::new(&net, 2, 1 << 30);
    let outs: Vec<NetOutcome> = times.iter().map(|&a| m.arrive(a, None)).collect();
    let mut long_seen = false;
    for o in outs {
        let NetOutcome::Accepted(t) = o else { continue };
        let NetPoll::Done(route) = m.poll(t, END) else {
            panic!("not done")
        };
        if route.end != End::Exited {
            continue;
        }
        let mut out = Vec::new();
        http::write_network_timing(&mut out, &route, &net.stations, 3_000, None);
        let text = String::from_utf8(out).expect("ascii");
        let value = text.strip_prefix("Server-Timing: ").expect("the field");
        let metrics: Vec<(&str, f64)> = value
            .split(", ")
            .map(|m| {
                let (name, rest) = m.split_once(";dur=").expect("a duration");
                let dur = rest.split(';').next().expect("a number");
                (name, dur.parse::<f64>().expect("a number"))
            })
            .collect();
        // At most 16 durations (what qload keeps); visits in order, then rest, then late.
        assert!(metrics.len() <= 16, "{text}");
        let kept = route.kept();
        for (i, v) in kept.iter().enumerate() {
            let s = &net.stations[usize::from(v.station)].name;
            assert_eq!(metrics[2 * i].0, format!("{s}.wait"), "{text}");
            assert_eq!(metrics[2 * i + 1].0, format!("{s}.service"), "{text}");
        }
        if route.n_visits as usize > MAX_VISITS {
            long_seen = true;
            assert_eq!(metrics[2 * MAX_VISITS].0, "rest", "{text}");
            assert!(
                text.contains(&format!(";desc={}", route.n_visits as usize - MAX_VISITS)),
                "{text}"
            );
        }
        assert_eq!(metrics.last().map(|m| m.0), Some("late"), "{text}");
        // Each duration is rounded to the microsecond on its own: the sum is within 0.5 µs per
        // metric of the sojourn plus late.
        let sum_ms: f64 = metrics.iter().map(|m| m.1).sum();
        let want_ms = (route.sojourn_ns() + 3_000) as f64 * 1e-6;
        assert!(
            (sum_ms - want_ms).abs() <= 0.0005 * metrics.len() as f64 + 1e-9,
            "{text}: {sum_ms} vs {want_ms}"
        );
    }
    assert!(long_seen, "no answer with more than {MAX_VISITS} visits");
}

#[test]
fn every_discipline_is_accepted_and_the_start_up_line_names_it() {
    let mut net = web_db();
    net.stations[1].model = net.stations[1].model.with_discipline(Discipline::Ps);
    let c = Config {
        network: Some(net),
        ..Config::default()
    };
    c.validate().expect("PS in a network is served");
    let line = c.describe("127.0.0.1:1".parse().expect("an address"));
    assert!(line.contains("db (exp mu 2000/s c=1 ps)"), "{line}");
    assert!(line.contains("; one class;"), "{line}");
    // Classes of a station's own are refused: the request carries its class.
    let mut net = web_db();
    net.stations[0].model = net.stations[0]
        .model
        .with_discipline(Discipline::Priority)
        .with_classes(queuelab_common::model::Classes::new(&[0.5, 0.5]).expect("classes"));
    let c = Config {
        network: Some(net),
        ..Config::default()
    };
    let e = c.validate().expect_err("a station's classes are refused");
    assert!(e.to_string().contains("give them at the top level"), "{e}");
    // A name that cannot be a Server-Timing metric name.
    let mut net = web_db();
    net.stations[0].name = "we b".into();
    let c = Config {
        network: Some(net),
        ..Config::default()
    };
    assert!(c.validate().is_err());
    let c = Config {
        network: Some(web_db()),
        ..Config::default()
    };
    c.validate().expect("the web/db network is valid");
    let line = c.describe("127.0.0.1:1".parse().expect("an address"));
    assert!(
        line.contains(
            "network of 2 stations: web (exp mu 1000/s c=1 fcfs), db (exp mu 2000/s c=1 fcfs)"
        ),
        "{line}"
    );
    assert!(
        line.contains("entry -> web 1; web -> db 0.5, exit 0.5; db -> web 0.3, exit 0.7"),
        "{line}"
    );
}

/// Counts of `NAME.wait` metrics in a Server-Timing value, by station name.
fn visits_in(value: &str, names: &[&str]) -> Vec<u64> {
    names
        .iter()
        .map(|n| {
            let w = format!("{n}.wait;");
            value.split(", ").filter(|m| m.starts_with(&w)).count() as u64
        })
        .collect()
}

#[test]
fn a_server_with_a_network_answers_and_counts_per_station() {
    // Blocking only at the entry station, so that a 503 has made no visit.
    let net = network(
        vec![
            station(
                "web",
                Model::new(2000.0, Servers::Finite(1)).with_capacity(Some(2)),
            ),
            station("db", Model::new(4000.0, Servers::Finite(2))),
        ],
        vec![1.0, 0.0],
        vec![vec![0.0, 0.6], vec![0.0, 0.0]],
    );
    let names = ["web", "db"];
    let h = server(|c| {
        c.network = Some(net.clone());
        c.threads = 2;
        c.spin = std::time::Duration::ZERO;
    });
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let mut s = connect(&h);
            std::thread::spawn(move || {
                let mut pending = Vec::new();
                let mut seen = Vec::new();
                for _ in 0..60 {
                    s.write_all(&get("/")).expect("send");
                    let r = read_response(&mut s, &mut pending)
                        .expect("read")
                        .expect("an answer");
                    seen.push(r);
                }
                seen
            })
        })
        .collect();
    let mut visits = [0u64; 2];
    let (mut ok, mut refused) = (0u64, 0u64);
    for c in clients {
        for r in c.join().expect("a client") {
            match r.status {
                200 => {
                    ok += 1;
                    let v = r.header("server-timing").expect("Server-Timing");
                    let n = visits_in(v, &names);
                    assert!(n[0] == 1 && n[1] <= 1, "{v}");
                    assert!(
                        v.rsplit(", ")
                            .next()
                            .is_some_and(|m| m.starts_with("late;dur=")),
                        "{v}"
                    );
                    let body = r.text();
                    assert!(
                        body.contains(&format!("\"visits\":{}", n[0] + n[1])),
                        "{body}"
                    );
                    visits[0] += n[0];
                    visits[1] += n[1];
                }
                503 => refused += 1,
                other => panic!("status {other}"),
            }
        }
    }
    assert_eq!(ok + refused, 240);
    // Each I/O thread publishes its counts between its passes: wait until both have published
    // every answer (an answer can reach the client just before its thread's next flush).
    let counted = |t: &str, outcome: &str| {
        let name = format!("qserve_requests_total{{outcome=\"{outcome}\"}} ");
        t.lines()
            .find_map(|l| l.strip_prefix(name.as_str()))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let text = wait_for_metrics(&h, "every answer counted", |t| {
        counted(t, "served") + counted(t, "blocked") >= 240.0
    });
    for (j, n) in names.iter().enumerate() {
        let label = format!("{{station=\"{n}\"}}");
        let v = metric(&text, &format!("qserve_station_visits_total{label}"));
        assert_eq!(v, visits[j] as f64, "{n}\n{text}");
        let count = metric(&text, &format!("qserve_sojourn_seconds_count{label}"));
        assert_eq!(count, v, "{n}");
        // Little's law on the finished path: ∫ N_j dt = Σ sojourns at j (to float rounding).
        let area = metric(&text, &format!("qserve_in_system_seconds_total{label}"));
        let sum = metric(&text, &format!("qserve_sojourn_seconds_sum{label}"));
        assert!(
            (area - sum).abs() <= 1e-9 * sum.max(1.0),
            "{n}: {area} vs {sum}"
        );
        let busy = metric(&text, &format!("qserve_busy_seconds_total{label}"));
        assert!(
            busy > 0.0 && busy <= sum + 1e-12,
            "{n}: busy {busy}, sojourn {sum}"
        );
    }
    assert_eq!(
        metric(&text, "qserve_station_blocked_total{station=\"web\"}"),
        refused as f64
    );
    assert_eq!(
        metric(&text, "qserve_station_blocked_total{station=\"db\"}"),
        0.0
    );
    assert_eq!(
        metric(&text, "qserve_requests_total{outcome=\"served\"}"),
        ok as f64
    );
    assert_eq!(
        metric(&text, "qserve_requests_total{outcome=\"blocked\"}"),
        refused as f64
    );
    // End to end: the network's ∫N dt is the sum over stations and equals Σ sojourns.
    let area = metric(&text, "qserve_in_system_seconds_total");
    let sum = metric(&text, "qserve_sojourn_seconds_sum");
    assert!((area - sum).abs() <= 1e-6 * sum.max(1.0), "{area} vs {sum}");
    assert_eq!(metric(&text, "qserve_sojourn_seconds_count"), ok as f64);
    h.shutdown();
    let summary = h.join().expect("a clean stop");
    assert_eq!(summary.arrivals, 240);
}

const BIN: &str = env!("CARGO_BIN_EXE_qserve");

#[test]
fn the_network_flag_conflicts_with_the_queue_flags() {
    for flag in [
        ["--mu", "500"],
        ["--servers", "2"],
        ["--capacity", "4"],
        ["--service", "const"],
        ["--discipline", "ps"],
        ["--classes", "0.5,0.5"],
        ["--model", "M/M/1"],
    ] {
        let out = Command::new(BIN)
            .args(["--network", "/nonexistent.toml"])
            .args(flag)
            .stdin(Stdio::null())
            .output()
            .expect("run qserve");
        assert_eq!(out.status.code(), Some(2), "{flag:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("cannot be used with"), "{flag:?}: {err}");
    }
}

/// Needs the network parser (`Network::load`, N1's part): passes once it is merged.
#[test]
fn a_bad_network_file_is_a_usage_error_naming_the_line() {
    let dir = std::env::temp_dir().join(format!("qserve-net-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "[[station]]\nname = \"web\"\nmu = 1000\n[routing]\nentry = { web = 1.0 }\n\
         web = { nowhere = 0.5, exit = 0.5 }\n",
    )
    .expect("write the file");
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--network"])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("run qserve");
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("line 6"), "{err}");
}

/// The routing decides hops as the contract says (a sanity check of the helper networks).
#[test]
fn the_test_networks_route_as_written() {
    let n = web_db();
    assert_eq!(n.hop(Some(0), 0.49), Hop::Station(1));
    assert_eq!(n.hop(Some(0), 0.51), Hop::Exit);
    assert_eq!(n.hop(Some(1), 0.29), Hop::Station(0));
    assert_eq!(n.hop(None, 0.99), Hop::Station(0));
}

/// The departure gaps of `departures` (any order) as a station records them: sorted, the gap of
/// each from the one before.
fn gaps_of(mut departures: Vec<u64>) -> DepartureGaps {
    departures.sort_unstable();
    let mut g = DepartureGaps::default();
    for d in departures {
        g.depart(d);
    }
    g
}

/// Each request's visits (all of them: the test networks visit at most MAX_VISITS stations).
fn routes_of(m: &mut NetworkModel, outs: &[NetOutcome]) -> Vec<Option<NetRoute>> {
    outs.iter()
        .map(|o| match *o {
            NetOutcome::Accepted(t) => match m.poll(t, END) {
                NetPoll::Done(r) => Some(r),
                other => panic!("{other:?}"),
            },
            NetOutcome::Refused(_) => None,
        })
        .collect()
}

/// FCFS with two servers (departures computed out of time order), then processor sharing
/// (departures processed as they come), then LCFS with two servers and a capacity.
fn gap_tandem() -> Network {
    network(
        vec![
            station("two", Model::new(600.0, Servers::Finite(2))),
            station(
                "ps",
                Model::new(1500.0, Servers::Finite(1)).with_discipline(Discipline::Ps),
            ),
            station(
                "lcfs2",
                Model::new(600.0, Servers::Finite(2))
                    .with_discipline(Discipline::Lcfs)
                    .with_capacity(Some(3)),
            ),
        ],
        vec![1.0, 0.0, 0.0],
        vec![vec![0.0, 1.0, 0.0], vec![0.0, 0.0, 1.0], vec![0.0; 3]],
    )
}

#[test]
fn departure_gaps_are_those_of_the_sorted_departures_at_every_station() {
    let net = gap_tandem();
    let times = arrivals(10_000, 1000.0, 21);
    let mut m = NetworkModel::new(&net, 21, 1 << 30);
    // Read at times between the arrivals, as scrapes do: every read records only departures
    // passed, in time order.
    let mut outs = Vec::new();
    let mut seen = [0u64; 3];
    for (i, &a) in times.iter().enumerate() {
        outs.push(m.arrive(a, None));
        if i % 7 == 0 {
            for (j, s) in seen.iter_mut().enumerate() {
                let g = m.station_at(j, a + 300_000).0.gaps;
                assert!(g.count >= *s, "station {j}: the count went down");
                *s = g.count;
            }
        }
    }
    let routes = routes_of(&mut m, &outs);
    let mut deps = vec![Vec::new(); 3];
    for r in routes.iter().flatten() {
        for v in r.kept() {
            deps[usize::from(v.station)].push(v.depart_ns);
        }
    }
    let mut out_of_order = 0;
    for (j, d) in deps.iter().enumerate() {
        out_of_order += d.windows(2).filter(|w| w[1] < w[0]).count() * usize::from(j == 0);
        let got = m.station_at(j, END).0.gaps;
        assert_eq!(got, gaps_of(d.clone()), "station {j}");
        assert_eq!(got.count as usize + 1, d.len(), "station {j}");
    }
    // In arrival order the two servers' departures are not sorted: the heap sorted them.
    assert!(out_of_order > 100, "only {out_of_order} out of order");
    let blocked = routes
        .iter()
        .flatten()
        .filter(|r| r.end != End::Exited)
        .count();
    assert!(blocked > 100, "only {blocked} blocked at lcfs2");
}

/// Every discipline against the simulator's replay, customer by customer, with two classes
/// (every third arrival names its class, the others take the network's draw).
///
/// Everything but the times must be identical: class, stations visited, blocking, the number of
/// visits, service times. The times are integer ns everywhere except at processor-sharing
/// stations, whose two implementations keep their virtual time in `f64` by different paths
/// (qserve's from the last event's whole ns plus a fraction, the replay's from absolute `f64`
/// times) and round each departure to the nearest ns. Their float errors are far below 10⁻³ ns,
/// so a PS departure differs, by exactly 1 ns, only when its exact time lies within that error
/// of a half nanosecond. Such a difference then moves the later times it reaches by at most as
/// much: with the same order of events (which the identical routes and blocking confirm), every
/// discipline's departure times are 1-Lipschitz in the arrival times (`max` and `+` for FCFS
/// and the non-preemptive lines, the rates min(1, c/n) and the preemptions changing at the same
/// events). So with `K` PS departures that differ, every time differs by at most `K` ns: the test
/// counts `K`, asserts it is a small fraction of the PS visits, and allows `K` ns on each time
/// (with `K = 0` everything is exact).
#[test]
fn every_discipline_is_the_reference_customer_by_customer() {
    for (name, mut net, lambda, n) in mixed_cases() {
        net.classes = Classes::new(&[0.4, 0.6]).expect("valid classes");
        let ps: Vec<bool> = net
            .stations
            .iter()
            .map(|s| s.model.discipline == Discipline::Ps)
            .collect();
        // Stations where a visit is served without a break: its start is its departure less its
        // service in both (under PS and preemption the replay reports the first start).
        let unbroken: Vec<bool> = net
            .stations
            .iter()
            .map(|s| {
                !matches!(
                    s.model.discipline,
                    Discipline::Ps | Discipline::PriorityPreemptive
                )
            })
            .collect();
        for seed in [1u64, 77] {
            let times = arrivals(n, lambda, seed);
            let drawn: Vec<u8> = replay_network(&net, seed, &times, 1 << 30, None)
                .iter()
                .map(NetFate::class)
                .collect();
            let given: Vec<u8> = (0..n).map(|i| named_class(i).unwrap_or(drawn[i])).collect();
            let want = replay_network(&net, seed, &times, 1 << 30, Some(&given));
            let mut m = NetworkModel::new(&net, seed, 1 << 30);
            let outs: Vec<NetOutcome> = times
                .iter()
                .enumerate()
                .map(|(i, &a)| m.arrive(a, named_class(i)))
                .collect();
            let got = routes_of(&mut m, &outs);
            assert_eq!(m.slots_in_use(), 0, "{name}");
            let label = |i: usize| format!("{name} seed {seed}: customer {i}");
            // Everything but the times, exactly; the PS departures that differ counted.
            let (mut ps_visits, mut k) = (0u64, 0u64);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                let Some(g) = g else {
                    // Refused at its entry station: blocked there with no visit.
                    assert!(
                        matches!(w, NetFate::Blocked { visits, .. } if visits.is_empty()),
                        "{}: {w:?}",
                        label(i)
                    );
                    assert_eq!(o_station(outs[i]), blocked_station(w), "{}", label(i));
                    continue;
                };
                assert_eq!(g.class, w.class(), "{}", label(i));
                assert_eq!(g.class, given[i], "{}", label(i));
                assert_eq!(g.n_visits as usize, w.visits().len(), "{}", label(i));
                match (g.end, w) {
                    (End::Exited, NetFate::Exited { .. }) => {}
                    (End::Blocked { station }, NetFate::Blocked { station: s, .. }) => {
                        assert_eq!(usize::from(station), *s, "{}", label(i));
                    }
                    other => panic!("{}: {other:?}", label(i)),
                }
                for (v, x) in g.kept().iter().zip(w.visits()) {
                    assert_eq!(usize::from(v.station), x.station, "{}", label(i));
                    assert_eq!(v.service_ns, x.service_ns, "{}", label(i));
                    if ps[x.station] {
                        ps_visits += 1;
                        k += u64::from(v.depart_ns != x.depart_ns);
                    }
                }
                let rest_service: u64 = w
                    .visits()
                    .iter()
                    .skip(MAX_VISITS)
                    .map(|v| v.service_ns)
                    .sum();
                assert_eq!(g.rest_service_ns, rest_service, "{}", label(i));
            }
            assert!(ps_visits > 5_000, "{name}: {ps_visits} PS visits");
            assert!(
                k * 100 <= ps_visits,
                "{name}: {k} of {ps_visits} PS departures differ"
            );
            // The times, within K ns each.
            let close = |a: u64, b: u64| a.abs_diff(b) <= k;
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                let Some(g) = g else { continue };
                assert!(
                    close(g.end_ns, w.at_ns()),
                    "{}: end {} vs {}",
                    label(i),
                    g.end_ns,
                    w.at_ns()
                );
                for (v, x) in g.kept().iter().zip(w.visits()) {
                    assert!(
                        close(v.arrive_ns, x.arrive_ns),
                        "{}: {v:?} vs {x:?}",
                        label(i)
                    );
                    assert!(
                        close(v.depart_ns, x.depart_ns),
                        "{}: {v:?} vs {x:?}",
                        label(i)
                    );
                    if unbroken[x.station] {
                        assert!(
                            close(v.start_ns, x.start_ns),
                            "{}: {v:?} vs {x:?}",
                            label(i)
                        );
                    }
                }
            }
            // The cases exercise what they are meant to: blocking (at the entry and on the
            // way), long routes, waiting, and priority by class.
            let blocked = want
                .iter()
                .filter(|f| matches!(f, NetFate::Blocked { .. }))
                .count();
            let late_block = want
                .iter()
                .filter(|f| matches!(f, NetFate::Blocked { visits, .. } if !visits.is_empty()))
                .count();
            let long = want
                .iter()
                .filter(|f| f.visits().len() > MAX_VISITS)
                .count();
            assert!(
                blocked > 100 && late_block > 10,
                "{name}: {blocked} blocked, {late_block} on the way"
            );
            assert!(
                long > 5,
                "{name}: {long} with more than {MAX_VISITS} visits"
            );
            let mut wait = [[0u128; 2]; 2];
            for f in &want {
                for v in f.visits().iter().filter(|v| v.station == 1) {
                    let c = usize::from(f.class().min(1));
                    wait[c][0] += u128::from(v.start_ns - v.arrive_ns);
                    wait[c][1] += 1;
                }
            }
            let mean = |c: usize| wait[c][0] as f64 / wait[c][1] as f64;
            assert!(
                mean(0) < 0.7 * mean(1),
                "{name}: prio waits {} vs {}",
                mean(0),
                mean(1)
            );
            eprintln!("{name} seed {seed}: {k} of {ps_visits} PS departures differ by 1 ns");
        }
    }
}

fn o_station(o: NetOutcome) -> Option<usize> {
    match o {
        NetOutcome::Refused(End::Blocked { station }) => Some(usize::from(station)),
        _ => None,
    }
}

fn blocked_station(f: &NetFate) -> Option<usize> {
    match f {
        NetFate::Blocked { station, .. } => Some(*station),
        NetFate::Exited { .. } => None,
    }
}

/// `GET /` naming class `class`.
fn get_class(class: u8) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: test\r\nX-Priority: {class}\r\n\r\n").into_bytes()
}

#[test]
fn a_server_with_ps_and_priority_stations_names_each_request_class() {
    // Two classes at the top level, a PS entry station and a preemptive-priority one after it
    // (with a way back), both with one server.
    let mut net = network(
        vec![
            station(
                "front",
                Model::new(3000.0, Servers::Finite(1)).with_discipline(Discipline::Ps),
            ),
            station(
                "prio",
                Model::new(4000.0, Servers::Finite(1))
                    .with_discipline(Discipline::PriorityPreemptive),
            ),
        ],
        vec![1.0, 0.0],
        vec![vec![0.0, 0.7], vec![0.2, 0.0]],
    );
    net.classes = Classes::new(&[0.5, 0.5]).expect("valid classes");
    let names = ["front", "prio"];
    let h = server(|c| {
        c.network = Some(net.clone());
        c.threads = 2;
        c.spin = std::time::Duration::ZERO;
    });
    let clients: Vec<_> = (0..4u8)
        .map(|k| {
            let mut s = connect(&h);
            std::thread::spawn(move || {
                let mut pending = Vec::new();
                let mut seen = Vec::new();
                for i in 0..80u8 {
                    // Client 3 names no class (the network draws one); the others cycle.
                    let named = (k < 3).then_some((i + k) % 3);
                    let req = match named {
                        Some(c) => get_class(c),
                        None => get("/"),
                    };
                    s.write_all(&req).expect("send");
                    let r = read_response(&mut s, &mut pending)
                        .expect("read")
                        .expect("an answer");
                    seen.push((named, r));
                }
                seen
            })
        })
        .collect();
    let mut by_class = [0u64; 3];
    let mut served = 0u64;
    for c in clients {
        for (named, r) in c.join().expect("a client") {
            assert_eq!(r.status, 200, "{:?}", r.text());
            served += 1;
            let v = r.header("server-timing").expect("Server-Timing");
            let n = visits_in(v, &names);
            assert!(n[0] >= 1, "{v}");
            let (rest, class) = v.rsplit_once(", class;desc=").expect("the class last");
            assert!(
                rest.rsplit(", ")
                    .next()
                    .is_some_and(|m| m.starts_with("late;dur=")),
                "{v}"
            );
            let class: u8 = class.parse().expect("a class number");
            match named {
                Some(k) => assert_eq!(class, k, "{v}"),
                None => assert!(class < 2, "drawn from two classes: {v}"),
            }
            by_class[usize::from(class)] += 1;
            // The answer counts every visit; Server-Timing names the first MAX_VISITS and sums
            // the others into `rest` (a route here can be long: 0.7 × 0.2 per loop).
            let body = r.text();
            let visits: u64 = body
                .split("\"visits\":")
                .nth(1)
                .and_then(|t| t.trim_end_matches(['}', '\n']).parse().ok())
                .expect("visits in the body");
            let kept = visits.min(queuelab_server::network::MAX_VISITS as u64);
            assert_eq!(n[0] + n[1], kept, "{v} / {body}");
            assert_eq!(v.contains("rest;dur="), visits > kept, "{v} / {body}");
        }
    }
    assert_eq!(served, 320);
    let counted = |t: &str| {
        t.lines()
            .find_map(|l| l.strip_prefix("qserve_requests_total{outcome=\"served\"} "))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let text = wait_for_metrics(&h, "every answer counted", |t| counted(t) >= 320.0);
    // End to end by class: the counts of each class, and sums that add up to the total.
    let mut sum = 0.0;
    for (k, &want) in by_class.iter().enumerate() {
        let count = metric(
            &text,
            &format!("qserve_sojourn_seconds_count{{class=\"{k}\"}}"),
        );
        assert_eq!(count, want as f64, "class {k}\n{text}");
        sum += metric(
            &text,
            &format!("qserve_sojourn_seconds_sum{{class=\"{k}\"}}"),
        );
    }
    let total = metric(&text, "qserve_sojourn_seconds_sum");
    assert!(
        (sum - total).abs() <= 1e-6 * total.max(1.0),
        "{sum} vs {total}"
    );
    // Both stations keep departure gaps (the PS one and the priority one).
    for n in names {
        let g = metric(
            &text,
            &format!("qserve_station_departure_gap_seconds_count{{station=\"{n}\"}}"),
        );
        assert!(g > 0.0, "{n}: no gaps\n{text}");
    }
    h.shutdown();
    let summary = h.join().expect("a clean stop");
    assert_eq!(summary.arrivals, 320);
}

#[test]
fn a_network_file_with_every_discipline_and_classes_starts_and_says_so() {
    let dir = std::env::temp_dir().join(format!("qserve-net-classes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let path = dir.join("mixed.toml");
    std::fs::write(
        &path,
        "classes = \"0.3,0.7\"\n\
         [[station]]\nname = \"front\"\nmu = 2000\ndiscipline = \"ps\"\n\
         [[station]]\nname = \"prio\"\nmu = 3000\nservers = 2\ndiscipline = \"priority-preemptive\"\n\
         [routing]\nentry = { front = 1.0 }\nfront = { prio = 0.5, exit = 0.5 }\n\
         prio = { exit = 1.0 }\n",
    )
    .expect("write the file");
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--threads", "1", "--network"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run qserve");
    let (line, addr, _rest) = support::startup(&mut child);
    let answer = (|| {
        let mut s = std::net::TcpStream::connect(&addr).ok()?;
        s.write_all(&get_class(1)).ok()?;
        let mut pending = Vec::new();
        read_response(&mut s, &mut pending).ok()?
    })();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(line.contains("front (exp mu 2000/s c=1 ps)"), "{line}");
    assert!(
        line.contains("prio (exp mu 3000/s c=2 priority-preemptive)"),
        "{line}"
    );
    assert!(line.contains("2 classes"), "{line}");
    let r = answer.expect("an answer");
    assert_eq!(r.status, 200);
    let v = r.header("server-timing").expect("Server-Timing");
    assert!(v.ends_with(", class;desc=1"), "{v}");
}
