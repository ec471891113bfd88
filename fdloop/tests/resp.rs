//! The `resp_server` example: its RESP parser (unit tests and a fuzz),
//! the server over plain TCP (commands, binary and large values,
//! pipelining, byte-by-byte requests, back-pressure, malformed and random
//! input, idle connections, signals, flags), and the real `redis-cli` and
//! `redis-benchmark` against it (skipped when missing, unless
//! `FDLOOP_REQUIRE_TOOLS=1`).

mod util;

#[path = "../examples/resp_server/parser.rs"]
#[allow(dead_code)]
mod parser;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use parser::{Parser, ProtocolError, MAX_INLINE};
use proptest::collection::vec as pvec;
use proptest::prelude::*;
use util::{example_exe, find_tool};

// ---------------------------------------------------------------------------
// Parser

/// Feeds `chunks` to a parser the way the server does (one buffer, the
/// request start moving on) and returns every complete request's
/// arguments, and the error that stopped parsing, if any.
fn parse_chunks<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<Vec<Vec<u8>>>, Option<ProtocolError>) {
    let mut p = Parser::new();
    let (mut buf, mut start, mut reqs) = (Vec::new(), 0, Vec::new());
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let req = &buf[start..];
            match p.parse(req) {
                Ok(Some(n)) => {
                    reqs.push(p.args().iter().map(|r| req[r.clone()].to_vec()).collect());
                    start += n;
                }
                Ok(None) => break,
                Err(e) => return (reqs, Some(e)),
            }
        }
    }
    (reqs, None)
}

fn parse_one(input: &[u8]) -> (Vec<Vec<Vec<u8>>>, Option<ProtocolError>) {
    parse_chunks([input])
}

fn words(ws: &[&str]) -> Vec<Vec<u8>> {
    ws.iter().map(|w| w.as_bytes().to_vec()).collect()
}

#[test]
fn parser_arrays_and_inline() {
    let (reqs, err) =
        parse_one(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nSET  a\tb\n*1\r\n$0\r\n\r\n");
    assert_eq!(err, None);
    assert_eq!(
        reqs,
        vec![
            words(&["GET", "k"]),
            words(&["PING"]),
            words(&["SET", "a", "b"]),
            words(&[""]),
        ]
    );
    // Empty requests: `*0`, `*-1`, blank lines.
    let (reqs, err) = parse_one(b"*0\r\n*-1\r\n\r\n\n");
    assert_eq!(err, None);
    assert_eq!(reqs, vec![Vec::<Vec<u8>>::new(); 4]);
}

#[test]
fn parser_binary_bulk() {
    let (reqs, err) = parse_one(b"*3\r\n$3\r\nSET\r\n$2\r\n\r\n\r\n$4\r\n\0\r\n\xff\r\n");
    assert_eq!(err, None);
    assert_eq!(
        reqs,
        vec![vec![
            b"SET".to_vec(),
            b"\r\n".to_vec(),
            b"\0\r\n\xff".to_vec()
        ]]
    );
}

#[test]
fn parser_partial_input_and_needed() {
    let mut p = Parser::new();
    let msg = b"*2\r\n$4\r\nECHO\r\n$10\r\n0123456789\r\n";
    for end in 0..msg.len() {
        assert_eq!(p.parse(&msg[..end]), Ok(None), "at {end}");
    }
    assert_eq!(p.parse(msg), Ok(Some(msg.len())));
    assert_eq!(p.args().len(), 2);
    // Inside a bulk string the parser knows how much is still missing.
    let mut p = Parser::new();
    let head = b"*1\r\n$1000\r\nabc";
    assert_eq!(p.parse(head), Ok(None));
    assert_eq!(p.needed(head.len()), 1000 - 3 + 2);
}

#[test]
fn parser_errors() {
    let cases: &[(&[u8], &str)] = &[
        (b"*abc\r\n", "invalid multibulk length"),
        (b"*2000000\r\n", "invalid multibulk length"),
        (b"*1\r\n+foo\r\n", "expected '$'"),
        (b"*1\r\n$x\r\n", "invalid bulk length"),
        (b"*1\r\n$-1\r\n", "invalid bulk length"),
        (b"*1\r\n$999999999999\r\n", "invalid bulk length"),
        (b"*1\r\n$3\r\nfooXY", "expected CRLF after bulk string"),
        (b"*1\n", "expected CRLF"),
        (b"*\r\n", "invalid multibulk length"),
    ];
    for (input, why) in cases {
        let (reqs, err) = parse_one(input);
        assert!(reqs.is_empty(), "{input:?}");
        assert_eq!(
            err,
            Some(ProtocolError(why)),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    let long = vec![b'a'; MAX_INLINE + 1];
    assert_eq!(
        parse_one(&long).1,
        Some(ProtocolError("too big inline request"))
    );
    let mut long_header = b"*".to_vec();
    long_header.extend(std::iter::repeat_n(b'1', MAX_INLINE + 1));
    assert_eq!(
        parse_one(&long_header).1,
        Some(ProtocolError("too big mbulk count string"))
    );
}

/// A xorshift generator: reproducible random bytes without dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Bytes biased towards RESP's tokens, so the fuzz reaches deep states.
    fn resp_noise(&mut self, len: usize) -> Vec<u8> {
        const TOKENS: &[&[u8]] = &[
            b"*", b"$", b"\r\n", b"\r", b"\n", b"1", b"2", b"3", b"0", b"-", b"10", b" ", b"PING",
            b"SET", b"GET", b"INCR", b"QUIT", b"*2\r\n", b"$3\r\n", b"$-1\r\n",
        ];
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            if self.below(3) == 0 {
                v.push(self.next() as u8);
            } else {
                v.extend_from_slice(TOKENS[self.below(TOKENS.len())]);
            }
        }
        v
    }
}

#[test]
fn parser_fuzz_split_points_do_not_matter() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for round in 0..3000 {
        let len = rng.below(300);
        let input = if round % 2 == 0 {
            rng.resp_noise(len)
        } else {
            (0..len).map(|_| rng.next() as u8).collect()
        };
        let whole = parse_one(&input);
        let mut chunks = Vec::new();
        let mut rest = &input[..];
        while !rest.is_empty() {
            let n = 1 + rng.below(rest.len().min(17));
            chunks.push(&rest[..n]);
            rest = &rest[n..];
        }
        let split = parse_chunks(chunks);
        assert_eq!(whole, split, "input {input:?}");
    }
}

// ---------------------------------------------------------------------------
// Parser soak (proptest): malformed and truncated frames

/// A well-formed request: its arguments and its encoding (an array of bulk
/// strings, binary-safe, or an inline line of plain words).
fn frame() -> impl Strategy<Value = (Vec<Vec<u8>>, Vec<u8>)> {
    prop_oneof![
        pvec(pvec(any::<u8>(), 0..24), 0..6).prop_map(|args| {
            let refs: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
            let bytes = encode(&refs);
            (args, bytes)
        }),
        pvec("[a-zA-Z0-9]{1,8}", 1..5).prop_map(|ws| {
            let line = format!("{}\r\n", ws.join(" ")).into_bytes();
            (ws.into_iter().map(String::into_bytes).collect(), line)
        }),
    ]
}

/// How a frame is broken: cut short, one byte changed, bytes inserted, or
/// replaced by noise.
#[derive(Debug, Clone)]
enum Break {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Noise(Vec<u8>),
}

fn broken() -> impl Strategy<Value = Break> {
    prop_oneof![
        any::<usize>().prop_map(Break::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Break::Flip(i, b)),
        (any::<usize>(), pvec(any::<u8>(), 1..16)).prop_map(|(i, v)| Break::Insert(i, v)),
        pvec(any::<u8>(), 0..512).prop_map(Break::Noise),
    ]
}

fn apply(frame: &[u8], how: &Break) -> Vec<u8> {
    let at = |i: usize| if frame.is_empty() { 0 } else { i % frame.len() };
    match how {
        Break::Truncate(i) => frame[..at(*i)].to_vec(),
        Break::Flip(i, b) => {
            let mut v = frame.to_vec();
            if !v.is_empty() {
                let i = at(*i);
                v[i] ^= b | 1;
            }
            v
        }
        Break::Insert(i, bytes) => {
            let mut v = frame.to_vec();
            let i = at(*i);
            v.splice(i..i, bytes.iter().copied());
            v
        }
        Break::Noise(v) => v.clone(),
    }
}

/// 256 cases normally, 10^4 with `FDLOOP_SOAK=1`.
fn parser_config() -> ProptestConfig {
    ProptestConfig {
        cases: util::size(256, 10_000) as u32,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(parser_config())]

    /// Well-formed requests followed by a broken one, split anywhere: every
    /// well-formed request is answered, in order, whatever follows; a
    /// request cut short is waited for, not an error; nothing panics.
    #[test]
    fn parser_answers_every_well_formed_prefix(
        good in pvec(frame(), 0..6),
        bad in frame(),
        how in broken(),
        cuts in pvec(1usize..64, 0..12),
    ) {
        let mut input: Vec<u8> = good.iter().flat_map(|(_, b)| b.clone()).collect();
        input.extend(apply(&bad.1, &how));
        let mut chunks = Vec::new();
        let mut rest = &input[..];
        for c in cuts {
            let n = c.min(rest.len());
            chunks.push(&rest[..n]);
            rest = &rest[n..];
        }
        chunks.push(rest);
        let (reqs, err) = parse_chunks(chunks);
        prop_assert!(reqs.len() >= good.len() || err.is_some() && reqs.len() == good.len(),
            "{} of {} well-formed requests answered", reqs.len(), good.len());
        for (i, (args, _)) in good.iter().enumerate() {
            prop_assert_eq!(&reqs[i], args, "request {}", i);
        }
        if let Break::Truncate(_) = how {
            prop_assert_eq!(err, None);
            prop_assert_eq!(reqs.len(), good.len());
        }
    }

    /// Arbitrary bytes: no panic, and the parser's memory (its argument
    /// list) grows only with bytes received, never with declared lengths.
    #[test]
    fn parser_memory_follows_the_bytes_received(
        noise in pvec(prop_oneof![any::<u8>(), Just(b'*'), Just(b'$'), Just(b'\r'), Just(b'\n'),
            Just(b'9')], 0..256),
    ) {
        let mut p = Parser::new();
        let mut start = 0;
        for end in 1..=noise.len() {
            let done = match p.parse(&noise[start..end]) {
                Ok(done) => done,
                Err(_) => break,
            };
            prop_assert!(p.args().len() <= (end - start) / 2 + 1);
            start += done.unwrap_or(0);
        }
    }
}

// ---------------------------------------------------------------------------
// A server process and a client

use util::RespServer as Server;

/// The server in `--async` mode (tasks of `fdloop::rt` over the same
/// connection logic): the tests named `*_async_mode` run the callback
/// mode's checks against it.
fn async_server() -> Server {
    Server::start_with(&["--async"], |_| {})
}

/// A client of the server under test.
trait Connect {
    fn client(&self) -> Client;
}

impl Connect for Server {
    fn client(&self) -> Client {
        Client::connect(self.addr)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

fn bulk(v: &[u8]) -> Reply {
    Reply::Bulk(Some(v.to_vec()))
}

fn simple(s: &str) -> Reply {
    Reply::Simple(s.into())
}

fn error(s: &str) -> Reply {
    Reply::Error(s.into())
}

struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

/// One request as RESP: an array of bulk strings.
fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.set_nodelay(true).unwrap();
        Client {
            r: BufReader::with_capacity(64 * 1024, s.try_clone().unwrap()),
            w: s,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).expect("write");
    }

    fn cmd(&mut self, args: &[&[u8]]) -> Reply {
        self.send(&encode(args));
        self.reply()
    }

    fn line(&mut self) -> String {
        let mut line = Vec::new();
        self.r.read_until(b'\n', &mut line).expect("read reply");
        assert!(line.ends_with(b"\r\n"), "bad reply line {line:?}");
        line.truncate(line.len() - 2);
        String::from_utf8(line).expect("utf-8 reply line")
    }

    fn reply(&mut self) -> Reply {
        let line = self.line();
        let (kind, rest) = line.split_at(1);
        let num = || rest.parse::<i64>().expect("number");
        match kind {
            "+" => Reply::Simple(rest.into()),
            "-" => Reply::Error(rest.into()),
            ":" => Reply::Int(num()),
            "$" if num() < 0 => Reply::Bulk(None),
            "$" => {
                let mut v = vec![0; num() as usize + 2];
                self.r.read_exact(&mut v).expect("read bulk");
                assert_eq!(&v[v.len() - 2..], b"\r\n");
                v.truncate(v.len() - 2);
                Reply::Bulk(Some(v))
            }
            "*" if num() < 0 => Reply::Array(None),
            "*" => Reply::Array(Some((0..num()).map(|_| self.reply()).collect())),
            _ => panic!("bad reply line {line:?}"),
        }
    }

    /// Whether the server closed the connection (end of file, or a reset).
    fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        match self.r.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() == ErrorKind::ConnectionReset,
        }
    }
}

// ---------------------------------------------------------------------------
// Over plain TCP

#[test]
fn ping_echo_and_unknown_commands() {
    ping_echo_and_unknown_commands_on(Server::start());
}

#[test]
fn ping_echo_and_unknown_commands_async_mode() {
    ping_echo_and_unknown_commands_on(async_server());
}

fn ping_echo_and_unknown_commands_on(srv: Server) {
    let mut c = srv.client();
    assert_eq!(c.cmd(&[b"PING"]), simple("PONG"));
    assert_eq!(c.cmd(&[b"ping", b"hi"]), bulk(b"hi"));
    assert_eq!(c.cmd(&[b"EcHo", b"x y"]), bulk(b"x y"));
    assert_eq!(c.cmd(&[b"frob", b"x"]), error("ERR unknown command 'frob'"));
    // A name with CR/LF inside must not break the reply framing.
    assert_eq!(c.cmd(&[b"a\r\nb"]), error("ERR unknown command 'a??b'"));
    assert_eq!(
        c.cmd(&[b"GET"]),
        error("ERR wrong number of arguments for 'GET' command")
    );
    // Inline commands.
    c.send(b"PING\r\nECHO hello\nPING\r\n");
    assert_eq!(c.reply(), simple("PONG"));
    assert_eq!(c.reply(), bulk(b"hello"));
    assert_eq!(c.reply(), simple("PONG"));
    // What redis-benchmark and redis-cli ask first.
    assert_eq!(
        c.cmd(&[b"CONFIG", b"GET", b"save"]),
        Reply::Array(Some(vec![bulk(b"save"), bulk(b"")]))
    );
    assert_eq!(
        c.cmd(&[b"CONFIG", b"GET", b"appendonly"]),
        Reply::Array(Some(vec![bulk(b"appendonly"), bulk(b"no")]))
    );
    assert_eq!(
        c.cmd(&[b"CONFIG", b"GET", b"nosuch"]),
        Reply::Array(Some(vec![]))
    );
    assert_eq!(c.cmd(&[b"COMMAND", b"DOCS"]), Reply::Array(Some(vec![])));
}

#[test]
fn set_get_binary_values() {
    set_get_binary_values_on(Server::start());
}

#[test]
fn set_get_binary_values_async_mode() {
    set_get_binary_values_on(async_server());
}

fn set_get_binary_values_on(srv: Server) {
    let mut c = srv.client();
    assert_eq!(c.cmd(&[b"GET", b"nope"]), Reply::Bulk(None));
    let value = b"line one\r\nline two\r\n\0\xff*3\r\n$1\r\n";
    let key = b"k\r\ney\0";
    assert_eq!(c.cmd(&[b"SET", key, value]), simple("OK"));
    assert_eq!(c.cmd(&[b"GET", key]), bulk(value));
    assert_eq!(c.cmd(&[b"SET", key, b""]), simple("OK"));
    assert_eq!(c.cmd(&[b"GET", key]), bulk(b""));
    // Options: NX/XX and a TTL.
    assert_eq!(c.cmd(&[b"SET", key, b"x", b"NX"]), Reply::Bulk(None));
    assert_eq!(c.cmd(&[b"SET", b"new", b"x", b"XX"]), Reply::Bulk(None));
    assert_eq!(c.cmd(&[b"SET", b"new", b"x", b"nx"]), simple("OK"));
    assert_eq!(c.cmd(&[b"SET", b"t", b"v", b"PX", b"50"]), simple("OK"));
    assert_eq!(c.cmd(&[b"GET", b"t"]), bulk(b"v"));
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(c.cmd(&[b"GET", b"t"]), Reply::Bulk(None));
    assert_eq!(c.cmd(&[b"EXISTS", b"t"]), Reply::Int(0));
    assert_eq!(
        c.cmd(&[b"SET", b"t", b"v", b"EX", b"0"]),
        error("ERR invalid expire time in 'set' command")
    );
    assert_eq!(
        c.cmd(&[b"SET", b"t", b"v", b"BOGUS"]),
        error("ERR syntax error")
    );
}

#[test]
fn large_values_round_trip() {
    large_values_round_trip_on(Server::start());
}

#[test]
fn large_values_round_trip_async_mode() {
    large_values_round_trip_on(async_server());
}

fn large_values_round_trip_on(srv: Server) {
    let mut c = srv.client();
    for (i, size) in [1 << 20, 8 << 20].into_iter().enumerate() {
        let value: Vec<u8> = (0..size).map(|j| (j * 31 + i) as u8).collect();
        assert_eq!(c.cmd(&[b"SET", b"big", &value]), simple("OK"), "{size}");
        assert_eq!(c.cmd(&[b"GET", b"big"]), Reply::Bulk(Some(value)), "{size}");
    }
    assert_eq!(c.cmd(&[b"PING"]), simple("PONG"));
}

#[test]
fn a_declared_length_alone_allocates_nothing() {
    let srv = Server::start();
    let mut c = srv.client();
    // 512 MiB announced, 3 bytes sent: the server must not reserve the rest.
    c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\nabc");
    let mut d = srv.client();
    assert_eq!(d.cmd(&[b"PING"]), simple("PONG"));
    let peak = srv.peak_rss_kib();
    assert!(peak < 32 * 1024, "server peak RSS {peak} KiB");
    drop(c);
    assert_eq!(d.cmd(&[b"EXISTS", b"k"]), Reply::Int(0));
}

#[test]
fn pipelining_1000_commands_in_one_write() {
    pipelining_1000_commands_in_one_write_on(Server::start());
}

#[test]
fn pipelining_1000_commands_in_one_write_async_mode() {
    pipelining_1000_commands_in_one_write_on(async_server());
}

fn pipelining_1000_commands_in_one_write_on(srv: Server) {
    let mut c = srv.client();
    let mut batch = Vec::new();
    for i in 0..1000 {
        let key = format!("key{}", (i / 4) % 10);
        let req = match i % 4 {
            0 => encode(&[b"SET", key.as_bytes(), format!("v{i}").as_bytes()]),
            1 => encode(&[b"GET", key.as_bytes()]),
            2 => encode(&[b"INCR", b"counter"]),
            _ => b"PING\r\n".to_vec(),
        };
        batch.extend_from_slice(&req);
    }
    c.send(&batch);
    let mut counter = 0;
    for i in 0..1000 {
        let expect = match i % 4 {
            0 => simple("OK"),
            1 => bulk(format!("v{}", i - 1).as_bytes()),
            2 => {
                counter += 1;
                Reply::Int(counter)
            }
            _ => simple("PONG"),
        };
        assert_eq!(c.reply(), expect, "reply {i}");
    }
}

#[test]
fn backpressure_bounds_buffered_replies() {
    backpressure_bounds_buffered_replies_on(Server::start());
}

#[test]
fn backpressure_bounds_buffered_replies_async_mode() {
    backpressure_bounds_buffered_replies_on(async_server());
}

fn backpressure_bounds_buffered_replies_on(srv: Server) {
    let mut c = srv.client();
    let value = vec![b'v'; 64 * 1024];
    assert_eq!(c.cmd(&[b"SET", b"v", &value]), simple("OK"));
    // 1000 GETs ask for 64 MiB of replies; the client reads none of them
    // until everything is sent, then slowly. The server must hold at most a
    // few MiB of them at a time.
    const N: usize = 1000;
    let req = encode(&[b"GET", b"v"]).repeat(N);
    let mut w = c.w.try_clone().unwrap();
    let writer = std::thread::spawn(move || w.write_all(&req));
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..N {
        assert_eq!(c.reply(), bulk(&value), "reply {i}");
    }
    writer.join().unwrap().expect("writing the pipeline");
    let peak = srv.peak_rss_kib();
    println!("server peak RSS: {peak} KiB");
    assert!(peak < 24 * 1024, "server peak RSS {peak} KiB");
}

#[test]
fn requests_sent_byte_by_byte() {
    requests_sent_byte_by_byte_on(Server::start());
}

#[test]
fn requests_sent_byte_by_byte_async_mode() {
    requests_sent_byte_by_byte_on(async_server());
}

fn requests_sent_byte_by_byte_on(srv: Server) {
    let mut c = srv.client();
    let mut msg = encode(&[b"SET", b"slow", b"hello\r\nworld"]);
    msg.extend_from_slice(b"GET slow\r\n");
    for b in &msg {
        c.send(std::slice::from_ref(b));
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(c.reply(), simple("OK"));
    assert_eq!(c.reply(), bulk(b"hello\r\nworld"));
    assert_eq!(c.cmd(&[b"EXISTS", b"slow"]), Reply::Int(1));
}

#[test]
fn incr_and_its_errors() {
    let srv = Server::start();
    let mut c = srv.client();
    assert_eq!(c.cmd(&[b"INCR", b"n"]), Reply::Int(1));
    assert_eq!(c.cmd(&[b"INCR", b"n"]), Reply::Int(2));
    assert_eq!(c.cmd(&[b"GET", b"n"]), bulk(b"2"));
    assert_eq!(c.cmd(&[b"SET", b"m", b"-10"]), simple("OK"));
    assert_eq!(c.cmd(&[b"INCR", b"m"]), Reply::Int(-9));
    for bad in [
        &b"abc"[..],
        b"1.5",
        b" 1",
        b"01",
        b"",
        b"99999999999999999999",
    ] {
        assert_eq!(c.cmd(&[b"SET", b"s", bad]), simple("OK"));
        assert_eq!(
            c.cmd(&[b"INCR", b"s"]),
            error("ERR value is not an integer or out of range"),
            "{bad:?}"
        );
    }
    assert_eq!(
        c.cmd(&[b"SET", b"max", b"9223372036854775807"]),
        simple("OK")
    );
    assert_eq!(
        c.cmd(&[b"INCR", b"max"]),
        error("ERR increment or decrement would overflow")
    );
}

#[test]
fn del_and_exists_count_keys() {
    let srv = Server::start();
    let mut c = srv.client();
    assert_eq!(c.cmd(&[b"SET", b"a", b"1"]), simple("OK"));
    assert_eq!(c.cmd(&[b"SET", b"b", b"2"]), simple("OK"));
    assert_eq!(c.cmd(&[b"EXISTS", b"a", b"b", b"c", b"a"]), Reply::Int(3));
    assert_eq!(c.cmd(&[b"DEL", b"a", b"c", b"a"]), Reply::Int(1));
    assert_eq!(c.cmd(&[b"EXISTS", b"a"]), Reply::Int(0));
    assert_eq!(c.cmd(&[b"DEL", b"b"]), Reply::Int(1));
    assert_eq!(c.cmd(&[b"DEL", b"b"]), Reply::Int(0));
}

#[test]
fn quit_replies_then_closes() {
    quit_replies_then_closes_on(Server::start());
}

#[test]
fn quit_replies_then_closes_async_mode() {
    quit_replies_then_closes_on(async_server());
}

fn quit_replies_then_closes_on(srv: Server) {
    let mut c = srv.client();
    // Requests pipelined after QUIT are not executed.
    c.send(b"PING\r\nQUIT\r\nSET after quit\r\n");
    assert_eq!(c.reply(), simple("PONG"));
    assert_eq!(c.reply(), simple("OK"));
    assert!(c.closed());
    let mut d = srv.client();
    assert_eq!(d.cmd(&[b"EXISTS", b"after"]), Reply::Int(0));
}

#[test]
fn malformed_input_gets_an_error_and_only_that_connection_closes() {
    malformed_input_gets_an_error_and_only_that_connection_closes_on(Server::start());
}

#[test]
fn malformed_input_gets_an_error_and_only_that_connection_closes_async_mode() {
    malformed_input_gets_an_error_and_only_that_connection_closes_on(async_server());
}

fn malformed_input_gets_an_error_and_only_that_connection_closes_on(srv: Server) {
    let mut bystander = srv.client();
    assert_eq!(bystander.cmd(&[b"SET", b"k", b"v"]), simple("OK"));
    let cases: &[(&[u8], &str)] = &[
        (b"*abc\r\n", "invalid multibulk length"),
        (b"*1\r\n$x\r\n", "invalid bulk length"),
        (b"*1\r\n+foo\r\n", "expected '$'"),
        (b"*1\r\n$3\r\nfooXX", "expected CRLF after bulk string"),
        (b"*1\r\n$999999999999\r\n", "invalid bulk length"),
        (b"*9999999\r\n", "invalid multibulk length"),
        (b"PING\r\n*1\r\n$-5\r\n", "invalid bulk length"),
    ];
    for (input, why) in cases {
        let mut c = srv.client();
        c.send(input);
        if input.starts_with(b"PING") {
            assert_eq!(c.reply(), simple("PONG"));
        }
        assert_eq!(
            c.reply(),
            Reply::Error(format!("ERR Protocol error: {why}")),
            "{input:?}"
        );
        assert!(c.closed(), "{input:?}");
        assert_eq!(bystander.cmd(&[b"GET", b"k"]), bulk(b"v"));
    }
    // An endless inline line is cut off too.
    let mut c = srv.client();
    c.send(&vec![b'x'; 100_000]);
    assert_eq!(
        c.reply(),
        error("ERR Protocol error: too big inline request")
    );
    assert!(c.closed());
    assert_eq!(bystander.cmd(&[b"PING"]), simple("PONG"));
}

#[test]
fn random_bytes_never_crash_the_server() {
    let mut srv = Server::start();
    let mut bystander = srv.client();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // 150 rounds; with FDLOOP_SOAK=1, as many as one minute allows.
    let soak_until = util::soak().then(|| Instant::now() + Duration::from_secs(60));
    let mut round = 0;
    while round < 150 || soak_until.is_some_and(|t| Instant::now() < t) {
        round += 1;
        let Ok(mut s) = TcpStream::connect(srv.addr) else {
            panic!("connect failed in round {round}");
        };
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        for _ in 0..1 + rng.below(4) {
            let len = 1 + rng.below(4096);
            let bytes = if round % 3 == 0 {
                (0..len).map(|_| rng.next() as u8).collect()
            } else {
                rng.resp_noise(len)
            };
            // The server may already have closed the connection.
            if s.write_all(&bytes).is_err() {
                break;
            }
        }
        if round % 2 == 0 {
            let _ = s.shutdown(Shutdown::Write);
        }
        let mut sink = [0u8; 8192];
        while let Ok(n) = s.read(&mut sink) {
            if n == 0 {
                break;
            }
        }
    }
    let peak = srv.peak_rss_kib();
    println!("{round} rounds of random bytes; server peak RSS {peak} KiB");
    assert!(peak < 64 * 1024, "server peak RSS {peak} KiB");
    srv.assert_alive();
    assert_eq!(bystander.cmd(&[b"PING"]), simple("PONG"));
    let mut fresh = srv.client();
    assert_eq!(fresh.cmd(&[b"PING"]), simple("PONG"));
}

#[test]
fn idle_connections_cost_no_cpu() {
    let srv = Server::start();
    let mut idle: Vec<Client> = (0..500).map(|_| srv.client()).collect();
    // One round trip each: every connection is accepted and registered.
    for c in &mut idle {
        assert_eq!(c.cmd(&[b"PING"]), simple("PONG"));
    }
    std::thread::sleep(Duration::from_millis(100));
    let before = srv.cpu_ticks();
    std::thread::sleep(Duration::from_secs(1));
    let used = srv.cpu_ticks() - before;
    assert!(
        used < 5,
        "{used} ticks of CPU in 1 s with 500 idle connections"
    );
    let mut c = srv.client();
    assert_eq!(c.cmd(&[b"PING"]), simple("PONG"));
    assert_eq!(idle[250].cmd(&[b"PING"]), simple("PONG"));
}

#[test]
fn sigterm_and_sigint_exit_cleanly() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let srv = Server::start();
        let mut c = srv.client();
        assert_eq!(c.cmd(&[b"PING"]), simple("PONG"));
        let (status, stderr) = srv.signal_and_wait(sig);
        assert_eq!(status.code(), Some(0), "signal {sig}: {status}; {stderr}");
        assert!(stderr.contains("closing 1 connection"), "{stderr}");
        assert!(c.closed());
    }
}

#[test]
fn flags_help_and_usage_errors() {
    let exe = example_exe("resp_server");
    let out = Command::new(&exe).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("usage: resp_server"));
    for bad in [
        &["--frob"][..],
        &["--port"],
        &["--port", "70000"],
        &["--port", "x"],
    ] {
        let out = Command::new(&exe).args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("usage: resp_server"), "{bad:?}: {err}");
    }
}

// ---------------------------------------------------------------------------
// With the real redis-cli and redis-benchmark

const HINT: &str = "apt-get install redis-tools";

/// Runs `cmd` with `stdin` as its input; fails after 120 s.
fn run_tool(cmd: &mut Command, stdin: &[u8]) -> (ExitStatus, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tool");
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    std::thread::spawn(move || input.write_all(&stdin));
    let out = util::finish_example(child, "tool", &[]);
    (out.status, out.stdout, out.stderr)
}

fn cli(tool: &std::path::Path, srv: &Server, args: &[&str], stdin: &[u8]) -> String {
    let port = srv.addr.port().to_string();
    let mut cmd = Command::new(tool);
    cmd.args(["-h", "127.0.0.1", "-p", &port]).args(args);
    let (status, out, err) = run_tool(&mut cmd, stdin);
    assert!(status.success(), "redis-cli {args:?}: {status}; {err}");
    out
}

#[test]
fn redis_cli_talks_to_the_server() {
    let Some(tool) = find_tool("redis-cli", HINT) else {
        return;
    };
    let srv = Server::start();
    assert_eq!(cli(&tool, &srv, &["ping"], b""), "PONG\n");
    assert_eq!(
        cli(&tool, &srv, &["set", "greeting", "hello world"], b""),
        "OK\n"
    );
    assert_eq!(cli(&tool, &srv, &["get", "greeting"], b""), "hello world\n");
    assert_eq!(cli(&tool, &srv, &["incr", "hits"], b""), "1\n");
    assert_eq!(cli(&tool, &srv, &["incr", "hits"], b""), "2\n");
    let err = cli(&tool, &srv, &["incr", "greeting"], b"");
    assert!(err.contains("ERR value is not an integer"), "{err}");
    assert_eq!(
        cli(&tool, &srv, &["exists", "greeting", "hits", "no"], b""),
        "2\n"
    );
    assert_eq!(cli(&tool, &srv, &["del", "greeting", "no"], b""), "1\n");
    // -x: the last argument is read from stdin, bytes as they are.
    let piped = b"first line\r\nsecond\x00line\n";
    assert_eq!(cli(&tool, &srv, &["-x", "set", "piped"], piped), "OK\n");
    let mut c = srv.client();
    assert_eq!(c.cmd(&[b"GET", b"piped"]), bulk(piped));
    // Several commands from stdin, one per line.
    let out = cli(&tool, &srv, &[], b"set a 1\nincr a\nget a\n");
    assert_eq!(out, "OK\n2\n2\n");
}

/// The requests/s of each test in `redis-benchmark -q` output.
fn benchmark_rates(out: &str) -> Vec<(String, f64)> {
    out.split(['\r', '\n'])
        .filter_map(|l| {
            let (name, rest) = l.trim().split_once(": ")?;
            let rps = rest
                .strip_suffix(" requests per second")
                .or_else(|| rest.split_once(" requests per second").map(|p| p.0))?;
            Some((name.to_owned(), rps.trim().parse().ok()?))
        })
        .collect()
}

#[test]
fn redis_benchmark_runs_against_the_server() {
    redis_benchmark_against(Server::start());
}

#[test]
fn redis_benchmark_runs_against_the_async_server() {
    redis_benchmark_against(async_server());
}

fn redis_benchmark_against(srv: Server) {
    let Some(tool) = find_tool("redis-benchmark", HINT) else {
        return;
    };
    let port = srv.addr.port().to_string();
    for pipeline in ["1", "16"] {
        let mut cmd = Command::new(&tool);
        cmd.args(["-h", "127.0.0.1", "-p", &port, "-q", "-t", "ping,set,get"])
            .args(["-n", "20000", "-c", "20", "-P", pipeline]);
        let (status, out, err) = run_tool(&mut cmd, b"");
        assert!(status.success(), "-P {pipeline}: {status}\n{out}\n{err}");
        assert!(
            !out.contains("WARNING") && !err.contains("WARNING"),
            "-P {pipeline}: {out}\n{err}"
        );
        let rates = benchmark_rates(&out);
        let names: Vec<&str> = rates.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["PING_INLINE", "PING_MBULK", "SET", "GET"],
            "-P {pipeline}: {out}"
        );
        for (name, rps) in &rates {
            assert!(*rps > 0.0, "-P {pipeline}: {name} {rps}");
        }
        println!("redis-benchmark -P {pipeline}: {rates:?}");
    }
    let mut c = srv.client();
    assert_eq!(c.cmd(&[b"PING"]), simple("PONG"));
    // The key redis-benchmark's SET wrote (its value is 3 bytes).
    match c.cmd(&[b"GET", b"key:__rand_int__"]) {
        Reply::Bulk(Some(v)) => assert_eq!(v.len(), 3),
        other => panic!("GET after the benchmark: {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Hostile and broken clients, each next to a well-behaved one that must lose
// nothing and keep its latency

/// A well-behaved client in a thread: `SET` then `GET` of its own keys
/// until stopped, checking every reply.
struct Bystander {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    join: std::thread::JoinHandle<(u64, Duration)>,
}

/// Worst round trip a bystander may see (generous: a noisy 2-core machine).
const BYSTANDER_WORST: Duration = Duration::from_secs(2);

impl Bystander {
    fn start(srv: &Server, tag: &str) -> Bystander {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (addr, tag, flag) = (srv.addr, tag.to_string(), stop.clone());
        let join = std::thread::spawn(move || {
            let mut c = Client::connect(addr);
            let (mut n, mut worst) = (0u64, Duration::ZERO);
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let (k, v) = (format!("{tag}:{n}"), format!("value {n}"));
                let t = Instant::now();
                assert_eq!(c.cmd(&[b"SET", k.as_bytes(), v.as_bytes()]), simple("OK"));
                assert_eq!(c.cmd(&[b"GET", k.as_bytes()]), bulk(v.as_bytes()));
                worst = worst.max(t.elapsed());
                n += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            (n, worst)
        });
        Bystander { stop, join }
    }

    /// Stops it; checks it made progress at a normal pace.
    fn finish(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (n, worst) = self.join.join().expect("bystander failed");
        println!("bystander: {n} SET+GET round trips, worst {worst:?}");
        assert!(n > 0, "the bystander got nothing done");
        assert!(
            worst < BYSTANDER_WORST,
            "bystander's worst round trip {worst:?}"
        );
    }
}

#[test]
fn a_client_sending_one_byte_per_100ms_holds_up_no_one() {
    let mut srv = Server::start();
    let by = Bystander::start(&srv, "slowloris");
    let mut c = srv.client();
    for b in b"SET s v\r\nGET s\r\n" {
        c.send(std::slice::from_ref(b));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(c.reply(), simple("OK"));
    assert_eq!(c.reply(), bulk(b"v"));
    by.finish();
    srv.assert_alive();
}

/// Writes `chunk` over and over without reading, until the socket stays
/// full for a second (the server stopped reading) or `cap` bytes went out;
/// returns the bytes written.
fn write_until_stalled(s: &TcpStream, chunk: &[u8], cap: usize) -> usize {
    s.set_nonblocking(true).unwrap();
    let (mut total, mut stalled_since) = (0, None::<Instant>);
    while total < cap {
        match (&*s).write(chunk) {
            Ok(n) => {
                total += n;
                stalled_since = None;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let since = *stalled_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_secs(1) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    s.set_nonblocking(false).unwrap();
    total
}

#[test]
fn a_client_that_pipelines_and_never_reads_meets_back_pressure() {
    let srv = Server::start_with(&["--output-limit", "65536"], |_| {});
    let mut c = srv.client();
    assert_eq!(c.cmd(&[b"SET", b"v", &[b'x'; 1024]]), simple("OK"));
    let by = Bystander::start(&srv, "never-reads");
    // Each 7-byte request asks for a 1 KiB reply; none is ever read.
    const CAP: usize = 256 << 20;
    let sent = write_until_stalled(&c.w, &b"GET v\r\n".repeat(1024), CAP);
    by.finish();
    let peak = srv.peak_rss_kib();
    println!("the server stopped reading after {sent} bytes of requests; its peak RSS {peak} KiB");
    assert!(sent < 64 << 20, "the server read {sent} bytes of requests");
    assert!(peak < 48 * 1024, "server peak RSS {peak} KiB");
}

#[test]
fn a_reply_past_the_hard_output_limit_closes_the_connection() {
    let mut srv = Server::start_with(
        &[
            "--output-limit",
            "16777216",
            "--output-hard-limit",
            "1048576",
        ],
        |_| {},
    );
    let by = Bystander::start(&srv, "hard-limit");
    let mut c = srv.client();
    let value = vec![b'b'; 2 << 20];
    assert_eq!(c.cmd(&[b"SET", b"big", &value]), simple("OK"));
    // 16 MiB of replies asked for at once, none read yet: past the hard
    // limit after the first write, so the connection is closed.
    c.send(&encode(&[b"GET", b"big"]).repeat(8));
    std::thread::sleep(Duration::from_millis(300));
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match c.r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading: {e} after {got} bytes"),
        }
    }
    println!("closed after {got} of {} bytes of replies", 8 * value.len());
    assert!(got < 8 * value.len(), "every reply arrived ({got} bytes)");
    by.finish();
    srv.assert_alive();
    assert_eq!(srv.client().cmd(&[b"EXISTS", b"big"]), Reply::Int(1));
}

#[test]
fn ten_thousand_idle_connections() {
    const N: usize = 10_000;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit with a valid pointer to an initialised struct.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if lim.rlim_max < (N + 200) as u64 {
        println!(
            "SKIP: the hard RLIMIT_NOFILE is {}; {N} connections need {} (test and server)",
            lim.rlim_max,
            N + 200
        );
        return;
    }
    // The test and the server (which inherits it) each hold N descriptors.
    util::set_soft_nofile_limit(lim.rlim_max);
    let srv = Server::start();
    let by = Bystander::start(&srv, "idle");
    let t = Instant::now();
    // In batches of 100, each answered before the next, so the listen
    // backlog never overflows (a dropped SYN costs a 1 s retransmit).
    let mut idle: Vec<TcpStream> = Vec::with_capacity(N);
    for batch in 0..N / 100 {
        let from = idle.len();
        for i in 0..100 {
            let s = TcpStream::connect(srv.addr)
                .unwrap_or_else(|e| panic!("connect {}: {e}", batch * 100 + i));
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            (&s).write_all(b"PING\r\n").unwrap();
            idle.push(s);
        }
        for (i, s) in idle[from..].iter_mut().enumerate() {
            let mut r = [0u8; 7];
            s.read_exact(&mut r)
                .unwrap_or_else(|e| panic!("connection {}: {e}", from + i));
            assert_eq!(&r, b"+PONG\r\n");
        }
    }
    println!("{N} connections opened and answered in {:?}", t.elapsed());
    std::thread::sleep(Duration::from_millis(100));
    by.finish();
    let before = srv.cpu_ticks();
    std::thread::sleep(Duration::from_secs(1));
    let used = srv.cpu_ticks() - before;
    println!(
        "{used} ticks of CPU in 1 s with {N} idle connections; server peak RSS {} KiB",
        srv.peak_rss_kib()
    );
    assert!(
        used < 10,
        "{used} ticks of CPU in 1 s, {N} idle connections"
    );
    let mut c = srv.client();
    assert_eq!(c.cmd(&[b"PING"]), simple("PONG"));
}

#[test]
fn half_closed_clients_get_every_reply_then_end_of_file() {
    let srv = Server::start();
    let by = Bystander::start(&srv, "half-closed");
    let mut c = srv.client();
    let mut req = Vec::new();
    for i in 0..500 {
        let k = format!("h{i}");
        req.extend(encode(&[b"SET", k.as_bytes(), k.as_bytes()]));
        req.extend(encode(&[b"GET", k.as_bytes()]));
    }
    c.send(&req);
    c.w.shutdown(Shutdown::Write).unwrap();
    for i in 0..500 {
        let k = format!("h{i}");
        assert_eq!(c.reply(), simple("OK"), "reply {i}");
        assert_eq!(c.reply(), bulk(k.as_bytes()), "reply {i}");
    }
    assert!(c.closed(), "no end of file after the last reply");
    // Half-closed before sending anything: closed at once.
    let mut quiet = srv.client();
    quiet.w.shutdown(Shutdown::Write).unwrap();
    assert!(quiet.closed());
    by.finish();
}

/// Closes `s` with a reset (`SO_LINGER` 0) instead of a FIN.
fn reset(s: TcpStream) {
    use std::os::fd::AsRawFd;
    let lin = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a live socket with a valid pointer to a linger
    // struct and its size.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&lin as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt: {}", std::io::Error::last_os_error());
}

#[test]
fn a_reset_in_the_middle_of_a_pipeline_leaves_a_consistent_prefix() {
    let mut srv = Server::start();
    let by = Bystander::start(&srv, "reset");
    const N: usize = 20_000;
    let keys: Vec<String> = (0..N).map(|i| format!("r{i}")).collect();
    let mut c = srv.client();
    let req: Vec<u8> = keys
        .iter()
        .flat_map(|k| encode(&[b"SET", k.as_bytes(), b"1"]))
        .collect();
    let w = c.w.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = (&w).write_all(&req); // the reset may cut it short
    });
    for i in 0..100 {
        assert_eq!(c.reply(), simple("OK"), "reply {i}");
    }
    reset(c.w);
    drop(c.r);
    let _ = writer.join();
    std::thread::sleep(Duration::from_millis(100));
    srv.assert_alive();
    by.finish();
    // The SETs executed are a prefix of the pipeline: r0..r{k-1}, no gap.
    let mut fresh = srv.client();
    let args: Vec<&[u8]> = std::iter::once(&b"EXISTS"[..])
        .chain(keys.iter().map(|k| k.as_bytes()))
        .collect();
    let Reply::Int(done) = fresh.cmd(&args) else {
        panic!("EXISTS did not answer an integer")
    };
    let done = done as usize;
    println!("{done} of {N} SETs executed before the reset");
    assert!(done >= 100);
    if done < N {
        assert_eq!(
            fresh.cmd(&[b"EXISTS", keys[done].as_bytes()]),
            Reply::Int(0)
        );
    }
    assert_eq!(
        fresh.cmd(&[b"EXISTS", keys[done - 1].as_bytes()]),
        Reply::Int(1)
    );
}

#[test]
fn requests_just_over_each_parser_limit_are_refused_alone() {
    use parser::{MAX_ARGS, MAX_BULK};
    let mut srv = Server::start();
    let by = Bystander::start(&srv, "limits");
    // At the inline limit: answered.
    let mut at = b"ECHO ".to_vec();
    at.resize(MAX_INLINE - 1, b'x');
    at.extend_from_slice(b"\r\n");
    let mut c = srv.client();
    c.send(&at);
    assert_eq!(c.reply(), bulk(&at[5..MAX_INLINE - 1]));
    let mut over_inline = at.clone();
    over_inline.insert(5, b'x');
    let over_header = |p: &str| {
        let mut v = p.as_bytes().to_vec();
        v.extend_from_slice(&vec![b'1'; MAX_INLINE + 1]);
        v.extend_from_slice(b"\r\n");
        v
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("inline request", over_inline),
        ("array header line", over_header("*")),
        ("bulk header line", over_header("*1\r\n$")),
        (
            "argument count",
            format!("*{}\r\n", MAX_ARGS + 1).into_bytes(),
        ),
        (
            "bulk length",
            format!("*1\r\n${}\r\n", MAX_BULK + 1).into_bytes(),
        ),
    ];
    for (what, req) in cases {
        let mut c = srv.client();
        c.send(&req);
        match c.reply() {
            Reply::Error(e) if e.starts_with("ERR Protocol error") => {}
            r => panic!("{what} just over the limit: {r:?}"),
        }
        assert!(c.closed(), "{what}: connection left open");
    }
    by.finish();
    srv.assert_alive();
}
