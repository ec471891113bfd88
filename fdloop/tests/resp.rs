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
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use parser::{Parser, ProtocolError, MAX_INLINE};
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
// A server process and a client

struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(example_exe("resp_server"))
            .args(["--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting resp_server");
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut line).expect("reading the first line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        // Keep draining stdout and stderr so the server never blocks on them.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Server {
            child,
            addr,
            stderr: Some(stderr),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Fails if the process has exited.
    fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            let err = self.stderr.take().map(|h| h.join().unwrap());
            panic!("resp_server exited: {status}; stderr: {err:?}");
        }
    }

    /// Sends `sig`, waits (up to 10 s) for the exit; returns the status and
    /// what the server wrote on stderr.
    fn signal_and_wait(mut self, sig: i32) -> (ExitStatus, String) {
        // SAFETY: sending a signal to our own child process.
        let rc = unsafe { libc::kill(self.pid() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            assert!(Instant::now() < deadline, "no exit 10 s after signal {sig}");
            std::thread::sleep(Duration::from_millis(5));
        };
        let err = self.stderr.take().map(|h| h.join().unwrap());
        (status, err.unwrap_or_default())
    }

    /// CPU time the server has used, in clock ticks (utime + stime).
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // "pid (comm) S ppid ...": fields 14 and 15 (1-based) are utime and
        // stime; after the last ')' they are the 12th and 13th.
        let rest = stat.rsplit_once(')').unwrap().1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    }

    /// The server's peak resident memory (`VmHWM`), in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    let srv = Server::start();
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
    let srv = Server::start();
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
    let srv = Server::start();
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
    let srv = Server::start();
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
    let srv = Server::start();
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
    let srv = Server::start();
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
    let srv = Server::start();
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
    let srv = Server::start();
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
    for round in 0..150 {
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
    let Some(tool) = find_tool("redis-benchmark", HINT) else {
        return;
    };
    let srv = Server::start();
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
