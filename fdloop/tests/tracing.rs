//! The `tracing` feature: the loop reports its notable moments as events
//! with target `"fdloop"`. Run with `cargo test -p fdloop --features tracing
//! --test tracing` (CI does); without the feature this file is empty.
#![cfg(feature = "tracing")]

use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use fdloop::{Action, EventLoop, Ping};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Records every event as "LEVEL target: fields".
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

struct Line<'a>(&'a mut String);

impl Visit for Line<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let m = event.metadata();
        let mut line = format!("{} {}:", m.level(), m.target());
        event.record(&mut Line(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn recorded(f: impl FnOnce()) -> Vec<String> {
    let rec = Recorder::default();
    tracing::subscriber::with_default(rec.clone(), f);
    let lines = rec.0.lock().unwrap().clone();
    lines
}

#[test]
fn a_panicking_callback_and_a_paused_source_are_reported() {
    let lines = recorded(|| {
        let mut ev: EventLoop<u32> = EventLoop::new().unwrap();
        let (h, ping) = Ping::new().unwrap();
        let id = ev
            .insert(ping, |(), _, n: &mut u32| {
                *n += 1;
                if *n == 1 {
                    panic!("first ping");
                }
                Action::Disable
            })
            .unwrap();
        h.ping().unwrap();
        let mut n = 0;
        let r = catch_unwind(AssertUnwindSafe(|| ev.dispatch_pending(&mut n)));
        assert!(r.is_err(), "the callback's panic propagates");
        h.ping().unwrap();
        ev.dispatch_pending(&mut n).unwrap();
        assert_eq!(n, 2);
        ev.enable(id).unwrap();
    });
    let find = |needle: &str| lines.iter().any(|l| l.contains(needle));
    assert!(
        find("WARN fdloop:") && find("panicked"),
        "panic not reported: {lines:#?}"
    );
    assert!(
        find(&format!("{} fdloop:", Level::DEBUG)) && find("paused"),
        "{lines:#?}"
    );
    assert!(find("resumed"), "{lines:#?}");
}
