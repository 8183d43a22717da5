//! A command's output stream read as it comes: decoded, split into lines, kept bounded.

use std::io::{self, Read};

use super::{CAPTURE_HEAD, CAPTURE_TAIL, Pipe};

/// The longest line passed on live.
const MAX_LINE: usize = 64 * 1024;

/// One output stream being read: decoded incrementally, split into lines, kept bounded.
/// Line ends are kept as `\n` whatever the program wrote (`\r\n` on Windows), so expectations and
/// templates read the same text on every system.
pub(super) struct Reader<R> {
    stream: Pipe,
    pub(super) source: Option<R>,
    decoder: encoding_rs::Decoder,
    text: String,
    line: String,
    /// The last chunk ended in `\r`: held back until we know whether `\n` follows.
    held_cr: bool,
    pub(super) kept: Bounded,
}

impl<R: Read> Reader<R> {
    pub(super) fn new(stream: Pipe, source: Option<R>, encoding: &'static encoding_rs::Encoding) -> Reader<R> {
        Reader {
            stream,
            source,
            decoder: encoding.new_decoder_with_bom_removal(),
            text: String::new(),
            line: String::new(),
            held_cr: false,
            kept: Bounded::default(),
        }
    }

    /// Reads what is available (the fd is ready); at end of stream, flushes and closes.
    pub(super) fn read(&mut self, buf: &mut [u8], on_line: &mut dyn FnMut(Pipe, &str)) {
        let Some(source) = &mut self.source else { return };
        let n = match source.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted || e.kind() == io::ErrorKind::WouldBlock => return,
            Err(_) => 0,
        };
        let last = n == 0;
        self.text.clear();
        if std::mem::take(&mut self.held_cr) {
            self.text.push('\r');
        }
        self.text.reserve(self.decoder.max_utf8_buffer_length(n).unwrap_or(n * 3));
        let _ = self.decoder.decode_to_string(&buf[..n], &mut self.text, last);
        if !last && self.text.ends_with('\r') {
            self.text.pop();
            self.held_cr = true;
        }
        if self.text.contains("\r\n") {
            self.text = self.text.replace("\r\n", "\n");
        }
        self.kept.push(&self.text);
        for piece in self.text.split_inclusive('\n') {
            let (body, complete) = match piece.strip_suffix('\n') {
                Some(body) => (body, true),
                None => (piece, false),
            };
            // A line longer than this is cut (the capture keeps all of it).
            let room = MAX_LINE.saturating_sub(self.line.len());
            let mut cut = room.min(body.len());
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            self.line.push_str(&body[..cut]);
            if complete {
                on_line(self.stream, &self.line);
                self.line.clear();
            }
        }
        if last {
            if !self.line.is_empty() {
                on_line(self.stream, &self.line);
                self.line.clear();
            }
            self.source = None;
        }
    }
}

/// The head and tail of a stream, with a count of what was dropped between them.
#[derive(Debug, Default)]
pub struct Bounded {
    head: String,
    tail: std::collections::VecDeque<u8>,
    dropped: u64,
}

impl Bounded {
    pub fn push(&mut self, s: &str) {
        let room = CAPTURE_HEAD.saturating_sub(self.head.len());
        if room > 0 {
            let mut cut = room.min(s.len());
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            self.head.push_str(&s[..cut]);
            if cut == s.len() {
                return;
            }
            return self.push_tail(&s.as_bytes()[cut..]);
        }
        self.push_tail(s.as_bytes());
    }

    fn push_tail(&mut self, bytes: &[u8]) {
        self.tail.extend(bytes);
        let over = self.tail.len().saturating_sub(CAPTURE_TAIL);
        if over > 0 {
            self.tail.drain(..over);
            self.dropped += over as u64;
        }
    }

    pub fn finish(self) -> String {
        let tail: Vec<u8> = self.tail.into_iter().collect();
        let tail = String::from_utf8_lossy(&tail);
        if self.dropped == 0 {
            return self.head + &tail;
        }
        // Start the tail at a line boundary so no half line is shown.
        let tail = tail.find('\n').map_or(&*tail, |i| &tail[i + 1..]);
        format!("{}\n[… {} bytes of output not kept …]\n{tail}", self.head, self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_keeps_head_and_tail() {
        let mut b = Bounded::default();
        let line = "x".repeat(1023) + "\n";
        for _ in 0..2048 {
            b.push(&line);
        }
        let out = b.finish();
        assert!(out.len() < CAPTURE_HEAD + CAPTURE_TAIL + 100);
        assert!(out.contains("bytes of output not kept"));
        assert!(out.ends_with('\n'));
    }

    #[test]
    fn small_output_is_kept_whole() {
        let mut b = Bounded::default();
        b.push("hello\n");
        b.push("world");
        assert_eq!(b.finish(), "hello\nworld");
    }

    /// Line ends split between reads, and `\r\n`, read as `\n`; a lone `\r` stays.
    #[test]
    fn crlf_is_read_as_lf_across_reads() {
        let chunks: Vec<&[u8]> = vec![b"one\r", b"\ntwo\r\nthr", b"ee\rx\r"];
        let mut lines = Vec::new();
        let mut r = Reader::new(Pipe::Stdout, Some(ChunkReader { chunks, at: 0 }), encoding_rs::UTF_8);
        let mut buf = vec![0u8; 64];
        while r.source.is_some() {
            r.read(&mut buf, &mut |_, l| lines.push(l.to_owned()));
        }
        assert_eq!(lines, ["one", "two", "three\rx\r"]);
        assert_eq!(r.kept.finish(), "one\ntwo\nthree\rx\r");
    }

    struct ChunkReader<'a> {
        chunks: Vec<&'a [u8]>,
        at: usize,
    }

    impl Read for ChunkReader<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some(chunk) = self.chunks.get(self.at) else { return Ok(0) };
            self.at += 1;
            buf[..chunk.len()].copy_from_slice(chunk);
            Ok(chunk.len())
        }
    }
}
