//! The commands the server knows and the key-value store behind them
//! (shared by the callback and `--async` modes).

use std::collections::HashMap;
use std::ops::Range;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Commands

/// The arguments of one request, borrowed from the input buffer.
#[derive(Clone, Copy)]
pub(crate) struct Args<'a> {
    pub(crate) req: &'a [u8],
    pub(crate) ranges: &'a [Range<usize>],
}

impl<'a> Args<'a> {
    fn len(&self) -> usize {
        self.ranges.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    fn get(&self, i: usize) -> &'a [u8] {
        &self.req[self.ranges[i].clone()]
    }

    fn iter(self) -> impl Iterator<Item = &'a [u8]> {
        self.ranges.iter().map(move |r| &self.req[r.clone()])
    }
}

#[derive(PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Quit,
}

pub(crate) fn run_command(args: Args<'_>, store: &mut Store, out: &mut Vec<u8>) -> Flow {
    let name = args.get(0);
    let mut lower = [0u8; 8];
    let cmd = match lower.get_mut(..name.len()) {
        Some(l) => {
            l.copy_from_slice(name);
            l.make_ascii_lowercase();
            &l[..]
        }
        None => &b""[..], // longer than any command here
    };
    let n = args.len();
    let arity_ok = match cmd {
        b"get" | b"echo" | b"incr" => n == 2,
        b"set" => n >= 3,
        b"ping" => n <= 2,
        b"del" | b"exists" | b"config" => n >= 2,
        b"quit" | b"command" => true,
        _ => {
            put_raw(out, b"-ERR unknown command '");
            put_sanitized(out, name);
            put_raw(out, b"'\r\n");
            return Flow::Continue;
        }
    };
    if !arity_ok {
        put_raw(out, b"-ERR wrong number of arguments for '");
        put_sanitized(out, name);
        put_raw(out, b"' command\r\n");
        return Flow::Continue;
    }
    match cmd {
        b"get" => match store.get(args.get(1)) {
            Some(v) => put_bulk(out, v),
            None => put_raw(out, b"$-1\r\n"),
        },
        b"set" => cmd_set(args, store, out),
        b"ping" if n == 1 => put_raw(out, b"+PONG\r\n"),
        b"ping" | b"echo" => put_bulk(out, args.get(1)),
        b"incr" => cmd_incr(args.get(1), store, out),
        b"del" => {
            let gone = args.iter().skip(1).filter(|k| store.remove(k)).count();
            put_int(out, b':', gone as i64);
        }
        b"exists" => {
            let found = args.iter().skip(1).filter(|k| store.contains(k)).count();
            put_int(out, b':', found as i64);
        }
        b"quit" => {
            put_raw(out, b"+OK\r\n");
            return Flow::Quit;
        }
        b"command" => cmd_command(args, out),
        _ => cmd_config(args, out),
    }
    Flow::Continue
}

/// `SET key value [EX seconds | PX milliseconds] [NX | XX]`
fn cmd_set(args: Args<'_>, store: &mut Store, out: &mut Vec<u8>) {
    let (mut ttl, mut nx, mut xx) = (None, false, false);
    let mut i = 3;
    while i < args.len() {
        let opt = args.get(i);
        let unit = if opt.eq_ignore_ascii_case(b"ex") {
            Some(1000)
        } else if opt.eq_ignore_ascii_case(b"px") {
            Some(1)
        } else {
            None
        };
        if let Some(unit) = unit {
            if ttl.is_some() || i + 1 == args.len() {
                return put_raw(out, b"-ERR syntax error\r\n");
            }
            i += 1;
            match parse_i64(args.get(i)) {
                Some(t) if t > 0 && t <= i64::MAX / 1000 => {
                    ttl = Some(Duration::from_millis(t as u64 * unit));
                }
                _ => return put_raw(out, b"-ERR invalid expire time in 'set' command\r\n"),
            }
        } else if opt.eq_ignore_ascii_case(b"nx") && !xx {
            nx = true;
        } else if opt.eq_ignore_ascii_case(b"xx") && !nx {
            xx = true;
        } else {
            return put_raw(out, b"-ERR syntax error\r\n");
        }
        i += 1;
    }
    let key = args.get(1);
    if (nx || xx) && store.contains(key) != xx {
        return put_raw(out, b"$-1\r\n");
    }
    let deadline = ttl.map(|t| Instant::now() + t);
    store.set(key, args.get(2), deadline);
    put_raw(out, b"+OK\r\n");
}

fn cmd_incr(key: &[u8], store: &mut Store, out: &mut Vec<u8>) {
    let Some(entry) = store.get_mut(key) else {
        store.set(key, b"1", None);
        return put_raw(out, b":1\r\n");
    };
    let Some(n) = parse_i64(&entry.value) else {
        return put_raw(out, b"-ERR value is not an integer or out of range\r\n");
    };
    let Some(n) = n.checked_add(1) else {
        return put_raw(out, b"-ERR increment or decrement would overflow\r\n");
    };
    entry.value.clear();
    put_decimal(&mut entry.value, n);
    put_int(out, b':', n);
}

/// `COMMAND ...`: no command table here; an empty answer satisfies clients
/// that ask (`redis-cli` asks for `COMMAND DOCS` when interactive).
fn cmd_command(args: Args<'_>, out: &mut Vec<u8>) {
    if args.len() >= 2 && args.get(1).eq_ignore_ascii_case(b"count") {
        put_int(out, b':', 0);
    } else {
        put_raw(out, b"*0\r\n");
    }
}

/// `CONFIG GET name...`: `redis-benchmark` asks for `save` and
/// `appendonly` before it starts; this server persists nothing.
fn cmd_config(args: Args<'_>, out: &mut Vec<u8>) {
    let sub = args.get(1);
    if sub.eq_ignore_ascii_case(b"resetstat") {
        return put_raw(out, b"+OK\r\n");
    }
    if !sub.eq_ignore_ascii_case(b"get") || args.len() < 3 {
        return put_raw(out, b"-ERR only CONFIG GET name... is supported\r\n");
    }
    let known = |p: &[u8]| -> Option<&'static [u8]> {
        if p.eq_ignore_ascii_case(b"save") {
            Some(b"")
        } else if p.eq_ignore_ascii_case(b"appendonly") {
            Some(b"no")
        } else {
            None
        }
    };
    let found: Vec<(&[u8], &[u8])> = args
        .iter()
        .skip(2)
        .filter_map(|p| known(p).map(|v| (p, v)))
        .collect();
    put_int(out, b'*', 2 * found.len() as i64);
    for (name, value) in found {
        put_bulk(out, name);
        put_bulk(out, value);
    }
}

/// A strict decimal `i64`, as Redis accepts it for `INCR` and TTLs: an
/// optional `-`, digits, no leading zeros, no overflow.
fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 || (digits[0] == b'0' && s.len() > 1) {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = i64::from(d - b'0');
        n = n.checked_mul(10).and_then(|n| {
            if neg {
                n.checked_sub(d)
            } else {
                n.checked_add(d)
            }
        })?;
    }
    Some(n)
}

// ---------------------------------------------------------------------------
// Replies

pub(crate) fn put_raw(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes);
}

/// `n` in decimal, without allocating.
fn put_decimal(out: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut m = n.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[i..]);
}

/// `<prefix><n>\r\n`: an integer reply (`:`), or an array or bulk header.
fn put_int(out: &mut Vec<u8>, prefix: u8, n: i64) {
    out.push(prefix);
    put_decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

fn put_bulk(out: &mut Vec<u8>, v: &[u8]) {
    put_int(out, b'$', v.len() as i64);
    out.extend_from_slice(v);
    out.extend_from_slice(b"\r\n");
}

/// A client-chosen name inside an error line: printable ASCII only (no
/// CR/LF that would end the line early), at most 128 bytes.
fn put_sanitized(out: &mut Vec<u8>, name: &[u8]) {
    let name = &name[..name.len().min(128)];
    out.extend(name.iter().map(|&b| {
        if b.is_ascii_graphic() || b == b' ' {
            b
        } else {
            b'?'
        }
    }));
}

// ---------------------------------------------------------------------------
// The store

struct Entry {
    value: Vec<u8>,
    /// When the key expires; checked (and the key dropped) on access.
    deadline: Option<Instant>,
}

#[derive(Default)]
pub(crate) struct Store {
    map: HashMap<Vec<u8>, Entry>,
    /// Whether any key was ever given a TTL (until then, one lookup per
    /// access instead of two).
    ttls: bool,
}

impl Store {
    /// The live entry for `key`; drops it if it has expired.
    fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        if !self.ttls {
            return self.map.get_mut(key);
        }
        let expired = match self.map.get(key)?.deadline {
            Some(d) => Instant::now() >= d,
            None => false,
        };
        if expired {
            self.map.remove(key);
            return None;
        }
        self.map.get_mut(key)
    }

    fn get(&mut self, key: &[u8]) -> Option<&[u8]> {
        self.get_mut(key).map(|e| &e.value[..])
    }

    fn contains(&mut self, key: &[u8]) -> bool {
        self.get_mut(key).is_some()
    }

    fn remove(&mut self, key: &[u8]) -> bool {
        self.contains(key) && self.map.remove(key).is_some()
    }

    /// Stores `value`, reusing the old value's allocation when it fits.
    fn set(&mut self, key: &[u8], value: &[u8], deadline: Option<Instant>) {
        self.ttls |= deadline.is_some();
        if let Some(e) = self.map.get_mut(key) {
            e.value.clear();
            e.value.extend_from_slice(value);
            e.deadline = deadline;
        } else {
            let entry = Entry {
                value: value.to_vec(),
                deadline,
            };
            self.map.insert(key.to_vec(), entry);
        }
    }
}
