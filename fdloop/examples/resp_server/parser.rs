//! An incremental parser for RESP2 requests: arrays of bulk strings
//! (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and inline commands (`GET k\r\n`).
//!
//! The parser never copies. It is fed the connection's unparsed bytes, always
//! starting at the first byte of the current request, and remembers how far
//! it got, so a request that arrives one byte at a time is scanned once, not
//! once per byte. When a request is complete, [`Parser::parse`] returns its
//! length and [`Parser::args`] the ranges of its arguments inside the slice it
//! was given (relative to the request's start, so the caller may move the
//! unparsed bytes to the front of its buffer between calls).
//!
//! States, per request:
//!
//! ```text
//! Start --'*'--> ArrayLen --n>0--> BulkLen --> Bulk(len) --more--> BulkLen
//!   |                 \--n<=0: done (empty request)      \--last--> done
//!   \--other--> Inline --line end--> done
//! ```
//!
//! Limits (as in Redis): 1M arguments, 512 MiB per bulk string, 64 KiB per
//! inline request or header line. Nothing is allocated from a declared
//! length: memory grows only with bytes actually received.

use std::ops::Range;

/// The longest bulk string accepted (`proto-max-bulk-len` in Redis).
pub const MAX_BULK: usize = 512 * 1024 * 1024;
/// The most arguments one request may declare.
pub const MAX_ARGS: usize = 1024 * 1024;
/// The longest inline request, and the longest `*`/`$` header line.
pub const MAX_INLINE: usize = 64 * 1024;

/// A request that cannot be parsed; the text follows `-ERR Protocol error: `.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolError(pub &'static str);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first byte of a request.
    Start,
    /// Inside an inline request, looking for its line end.
    Inline,
    /// After `*`, looking for the argument count's line end.
    ArrayLen,
    /// Expecting `$` and a length line.
    BulkLen,
    /// Expecting this many bytes of bulk data, then `\r\n`.
    Bulk(usize),
}

/// The parser's state for one connection.
#[derive(Debug)]
pub struct Parser {
    state: State,
    /// Bytes of the current request consumed by finished steps.
    pos: usize,
    /// Where the search for the next `\n` resumes (no byte is scanned twice).
    scan: usize,
    /// Bulk strings still expected in the current array.
    left: usize,
    args: Vec<Range<usize>>,
}

impl Default for Parser {
    fn default() -> Parser {
        Parser::new()
    }
}

impl Parser {
    /// A parser waiting for the first byte of a request.
    pub fn new() -> Parser {
        Parser {
            state: State::Start,
            pos: 0,
            scan: 0,
            left: 0,
            args: Vec::new(),
        }
    }

    /// Parses the request at the start of `buf`. `buf` must begin where the
    /// previous call's `buf` began (with possibly more bytes after), until a
    /// call returns `Ok(Some(_))` or an error; then the next request starts.
    ///
    /// Returns `Ok(Some(len))` when the request is complete (`len` bytes;
    /// [`args`](Parser::args) holds its arguments, possibly none for an
    /// empty request), `Ok(None)` when more bytes are needed.
    ///
    /// # Errors
    ///
    /// [`ProtocolError`] for malformed input; the connection should be
    /// answered with the error and closed (the parser is reset).
    pub fn parse(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let r = self.step_all(buf);
        if r.is_err() {
            self.reset();
        }
        r
    }

    /// The arguments of the request last completed, as ranges of the slice
    /// given to [`parse`](Parser::parse).
    pub fn args(&self) -> &[Range<usize>] {
        &self.args
    }

    /// How many more bytes the current request needs at least, if known
    /// (inside a bulk string); lets the caller size its buffer.
    pub fn needed(&self, have: usize) -> usize {
        match self.state {
            State::Bulk(len) => (self.pos + len + 2).saturating_sub(have),
            _ => 0,
        }
    }

    fn reset(&mut self) {
        self.state = State::Start;
        self.pos = 0;
        self.scan = 0;
        self.left = 0;
    }

    fn finish(&mut self) -> Option<usize> {
        let n = self.pos;
        self.reset();
        Some(n)
    }

    fn step_all(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        loop {
            match self.state {
                State::Start => {
                    let Some(&first) = buf.first() else {
                        return Ok(None);
                    };
                    self.args.clear();
                    if first == b'*' {
                        self.pos = 1;
                        self.scan = 1;
                        self.state = State::ArrayLen;
                    } else {
                        self.state = State::Inline;
                    }
                }
                State::Inline => return self.inline(buf),
                State::ArrayLen => {
                    let Some(line) = self.header_line(buf, "too big mbulk count string")? else {
                        return Ok(None);
                    };
                    let n =
                        parse_int(&buf[line]).ok_or(ProtocolError("invalid multibulk length"))?;
                    if n <= 0 {
                        return Ok(self.finish());
                    }
                    if n > MAX_ARGS as i64 {
                        return Err(ProtocolError("invalid multibulk length"));
                    }
                    self.left = n as usize;
                    self.args.reserve(self.left.min(64));
                    self.state = State::BulkLen;
                }
                State::BulkLen => {
                    let Some(&b) = buf.get(self.pos) else {
                        return Ok(None);
                    };
                    if b != b'$' {
                        return Err(ProtocolError("expected '$'"));
                    }
                    let Some(line) = self.header_line(buf, "too big bulk count string")? else {
                        return Ok(None);
                    };
                    let line = line.start + 1..line.end; // skip the '$'
                    match parse_int(&buf[line]) {
                        Some(n) if (0..=MAX_BULK as i64).contains(&n) => {
                            self.state = State::Bulk(n as usize);
                        }
                        _ => return Err(ProtocolError("invalid bulk length")),
                    }
                }
                State::Bulk(len) => {
                    let end = self.pos + len;
                    if buf.len() < end + 2 {
                        return Ok(None);
                    }
                    if &buf[end..end + 2] != b"\r\n" {
                        return Err(ProtocolError("expected CRLF after bulk string"));
                    }
                    self.args.push(self.pos..end);
                    self.pos = end + 2;
                    self.scan = self.pos;
                    self.left -= 1;
                    if self.left == 0 {
                        return Ok(self.finish());
                    }
                    self.state = State::BulkLen;
                }
            }
        }
    }

    /// Finds the `\r\n`-terminated line starting at `self.pos`; on success
    /// returns its content's range and moves past it.
    fn header_line(
        &mut self,
        buf: &[u8],
        too_big: &'static str,
    ) -> Result<Option<Range<usize>>, ProtocolError> {
        let Some(nl) = self.find_newline(buf) else {
            if buf.len() - self.pos > MAX_INLINE {
                return Err(ProtocolError(too_big));
            }
            return Ok(None);
        };
        if nl - self.pos > MAX_INLINE {
            return Err(ProtocolError(too_big));
        }
        if nl == self.pos || buf[nl - 1] != b'\r' {
            return Err(ProtocolError("expected CRLF"));
        }
        let line = self.pos..nl - 1;
        self.pos = nl + 1;
        self.scan = self.pos;
        Ok(Some(line))
    }

    /// The index of the next `\n` at or after `self.scan`, remembering how
    /// far the search got when there is none yet.
    fn find_newline(&mut self, buf: &[u8]) -> Option<usize> {
        let from = self.scan.max(self.pos);
        match buf[from..].iter().position(|&b| b == b'\n') {
            Some(i) => Some(from + i),
            None => {
                self.scan = buf.len();
                None
            }
        }
    }

    /// An inline request: one line (`\n` or `\r\n`), words separated by
    /// spaces or tabs. (Redis's quoting rules are not supported.)
    fn inline(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        // The same limit whether or not the line end has arrived yet, so the
        // outcome does not depend on how the input was split.
        let Some(nl) = self.find_newline(buf) else {
            if buf.len() > MAX_INLINE {
                return Err(ProtocolError("too big inline request"));
            }
            return Ok(None);
        };
        if nl > MAX_INLINE {
            return Err(ProtocolError("too big inline request"));
        }
        let end = if nl > 0 && buf[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        let mut i = 0;
        while i < end {
            if buf[i] == b' ' || buf[i] == b'\t' {
                i += 1;
                continue;
            }
            let start = i;
            while i < end && buf[i] != b' ' && buf[i] != b'\t' {
                i += 1;
            }
            self.args.push(start..i);
        }
        self.pos = nl + 1;
        Ok(self.finish())
    }
}

/// A decimal integer: an optional `-` and 1 to 18 digits (nothing else).
fn parse_int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(d - b'0');
    }
    Some(if neg { -n } else { n })
}
