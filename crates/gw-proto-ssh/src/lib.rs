//! SSH channel protocols, sans I/O: file operations read out of scp and
//! sftp streams, for the audit log and the recording, and sftp requests
//! judged one by one. Bytes the policy allows pass through unchanged.
//!
//! - **sftp** (SFTP v3, also what `scp` uses by default since OpenSSH 9):
//!   requests from the client (open, write, read, close, remove, rename,
//!   mkdir, rmdir, opendir) and the server's handle and data replies, so an
//!   upload or download is reported once, at close, with its name and size.
//! - **legacy scp** (`scp -O`, i.e. `exec scp -t|-f PATH`): the `C`/`D`/`E`
//!   control lines of the side that sends files.
//!
//! Peer bytes never panic here and never grow a buffer without bound: a
//! packet longer than [`MAX_PACKET`] (or a control line longer than
//! [`MAX_LINE`]) stops the extraction for that channel, which is reported
//! once, and the transfer goes on unobserved.

use std::collections::HashMap;
use std::fmt;

const MAX_PACKET: usize = 1 << 20;
const MAX_LINE: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the target.
    Upload,
    /// From the target to the client.
    Download,
}

/// One file operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Upload {
        path: String,
        bytes: u64,
    },
    Download {
        path: String,
        bytes: u64,
    },
    Remove {
        path: String,
    },
    Rename {
        from: String,
        to: String,
    },
    Mkdir {
        path: String,
    },
    Rmdir {
        path: String,
    },
    List {
        path: String,
    },
    /// The stream could not be followed any further.
    Unreadable {
        why: &'static str,
    },
    /// A request the policy refused; answered with "permission denied".
    Denied {
        request: String,
        reason: String,
    },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        match self {
            Op::Upload { path, bytes } => write!(f, "upload path={} bytes={bytes}", q(path)),
            Op::Download { path, bytes } => write!(f, "download path={} bytes={bytes}", q(path)),
            Op::Remove { path } => write!(f, "remove path={}", q(path)),
            Op::Rename { from, to } => write!(f, "rename from={} to={}", q(from), q(to)),
            Op::Mkdir { path } => write!(f, "mkdir path={}", q(path)),
            Op::Rmdir { path } => write!(f, "rmdir path={}", q(path)),
            Op::List { path } => write!(f, "list path={}", q(path)),
            Op::Unreadable { why } => write!(f, "unreadable why={}", q(why)),
            Op::Denied { request, reason } => {
                write!(f, "denied request={} reason={}", q(request), q(reason))
            }
        }
    }
}

pub struct Transfer {
    kind: Kind,
    broken: bool,
}

enum Kind {
    Sftp(Sftp),
    Scp(Scp),
}

impl Transfer {
    pub fn sftp() -> Transfer {
        Transfer {
            kind: Kind::Sftp(Sftp::default()),
            broken: false,
        }
    }

    /// For an exec command that runs the legacy scp protocol on the target.
    pub fn scp(command: &str) -> Option<Transfer> {
        let mut words = command.split_whitespace();
        if words.next()? != "scp" {
            return None;
        }
        let mut sink = None;
        let mut path = None;
        for w in words {
            if let Some(flags) = w.strip_prefix('-') {
                if flags.contains('t') {
                    sink = Some(true);
                } else if flags.contains('f') {
                    sink = Some(false);
                }
            } else {
                path = Some(w.to_owned());
            }
        }
        let sink = sink?;
        Some(Transfer {
            kind: Kind::Scp(Scp {
                // `-t`: the target receives, the client sends files.
                sending: if sink {
                    Direction::Upload
                } else {
                    Direction::Download
                },
                path: path.unwrap_or_default(),
                buf: Vec::new(),
                skip: 0,
                dirs: Vec::new(),
            }),
            broken: false,
        })
    }

    /// Takes the next bytes in `dir`; returns the operations they complete.
    pub fn feed(&mut self, dir: Direction, data: &[u8]) -> Vec<Op> {
        if self.broken {
            return Vec::new();
        }
        let result = match &mut self.kind {
            Kind::Sftp(s) => s.feed(dir, data),
            Kind::Scp(s) => s.feed(dir, data),
        };
        match result {
            Ok(ops) => ops,
            Err(why) => {
                self.broken = true;
                vec![Op::Unreadable { why }]
            }
        }
    }
}

/// Client-to-target sftp bytes after the policy looked at each request.
pub struct Filtered {
    /// Complete packets to forward (a partial one waits for its rest).
    pub forward: Vec<u8>,
    /// Status replies for refused requests, to send back to the client.
    pub reply: Vec<u8>,
    pub ops: Vec<Op>,
}

impl Transfer {
    /// For sftp: takes client bytes and forwards only complete packets;
    /// each request `judge` refuses (it gets text such as `sftp remove
    /// /etc/passwd` and returns why not) is answered here with
    /// `SSH_FX_PERMISSION_DENIED` instead of reaching the target. `Err`: the
    /// stream cannot be followed, so it cannot be policed: the caller ends
    /// the channel (fail closed).
    pub fn filter_upload(
        &mut self,
        data: &[u8],
        judge: impl Fn(&str) -> Option<String>,
    ) -> Result<Filtered, &'static str> {
        let Kind::Sftp(sftp) = &mut self.kind else {
            return Ok(Filtered {
                forward: data.to_vec(),
                reply: Vec::new(),
                ops: Vec::new(),
            });
        };
        sftp.up.extend_from_slice(data);
        let mut out = Filtered {
            forward: Vec::new(),
            reply: Vec::new(),
            ops: Vec::new(),
        };
        let mut at = 0;
        while let Some(len) = sftp.up.get(at..at + 4) {
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            if len == 0 || len > MAX_PACKET {
                self.broken = true;
                return Err("an sftp packet length is out of range");
            }
            let Some(packet) = sftp.up.get(at + 4..at + 4 + len) else {
                break;
            };
            let packet = packet.to_vec();
            let verdict =
                request_text(&packet).and_then(|text| judge(&text).map(|why| (text, why)));
            match verdict {
                Some((request, reason)) => {
                    let id = packet
                        .get(1..5)
                        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                    out.reply.extend(status_denied(id, &reason));
                    out.ops.push(Op::Denied { request, reason });
                }
                None => {
                    out.forward.extend_from_slice(&sftp.up[at..at + 4 + len]);
                    sftp.request(&packet, &mut out.ops);
                }
            }
            at += 4 + len;
        }
        sftp.up.drain(..at);
        Ok(out)
    }
}

/// What a request does, in the words guards match: `sftp write PATH`,
/// `sftp read PATH`, `sftp remove PATH`, `sftp rename FROM TO`, `sftp mkdir
/// PATH`, `sftp rmdir PATH`, `sftp setstat PATH`, `sftp symlink LINK TARGET`.
fn request_text(p: &[u8]) -> Option<String> {
    let (&kind, rest) = p.split_first()?;
    let mut r = Rd(rest);
    r.u32()?;
    Some(match kind {
        FXP_OPEN => {
            let path = r.text()?;
            let flags = r.u32()?;
            let verb = if flags & FXF_WRITE != 0 {
                "write"
            } else {
                "read"
            };
            format!("sftp {verb} {path}")
        }
        FXP_REMOVE => format!("sftp remove {}", r.text()?),
        FXP_RENAME => format!("sftp rename {} {}", r.text()?, r.text()?),
        FXP_MKDIR => format!("sftp mkdir {}", r.text()?),
        FXP_RMDIR => format!("sftp rmdir {}", r.text()?),
        FXP_SETSTAT => format!("sftp setstat {}", r.text()?),
        FXP_SYMLINK => format!("sftp symlink {} {}", r.text()?, r.text()?),
        _ => return None,
    })
}

/// An `SSH_FXP_STATUS` packet: permission denied, with a message.
fn status_denied(id: u32, reason: &str) -> Vec<u8> {
    let msg = format!("denied by gateway policy: {reason}");
    let mut body = vec![FXP_STATUS];
    body.extend_from_slice(&id.to_be_bytes());
    body.extend_from_slice(&FX_PERMISSION_DENIED.to_be_bytes());
    body.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    body.extend_from_slice(msg.as_bytes());
    body.extend_from_slice(&2u32.to_be_bytes());
    body.extend_from_slice(b"en");
    let mut p = (body.len() as u32).to_be_bytes().to_vec();
    p.extend(body);
    p
}

// SFTP v3 packet types (draft-ietf-secsh-filexfer-02).
const FXP_OPEN: u8 = 3;
const FXP_CLOSE: u8 = 4;
const FXP_READ: u8 = 5;
const FXP_WRITE: u8 = 6;
const FXP_OPENDIR: u8 = 11;
const FXP_REMOVE: u8 = 13;
const FXP_MKDIR: u8 = 14;
const FXP_RMDIR: u8 = 15;
const FXP_RENAME: u8 = 18;
const FXP_SETSTAT: u8 = 9;
const FXP_SYMLINK: u8 = 20;
const FXP_STATUS: u8 = 101;
const FX_PERMISSION_DENIED: u32 = 3;
const FXP_HANDLE: u8 = 102;
const FXP_DATA: u8 = 103;
const FXF_WRITE: u32 = 0x02;

#[derive(Default)]
struct Sftp {
    up: Vec<u8>,
    down: Vec<u8>,
    /// Open requests waiting for their handle: id → (path, writing).
    opening: HashMap<u32, (String, bool)>,
    /// Open files by handle: (path, writing, bytes).
    files: HashMap<Vec<u8>, (String, bool, u64)>,
    /// Read requests waiting for data: id → handle.
    reading: HashMap<u32, Vec<u8>>,
}

/// A cursor over one packet's payload.
struct Rd<'a>(&'a [u8]);

impl<'a> Rd<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_be_bytes(*head))
    }
    fn string(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u32()?).ok()?;
        let s = self.0.get(..n)?;
        self.0 = &self.0[n..];
        Some(s)
    }
    fn text(&mut self) -> Option<String> {
        self.string()
            .map(|s| String::from_utf8_lossy(s).into_owned())
    }
}

impl Sftp {
    fn feed(&mut self, dir: Direction, data: &[u8]) -> Result<Vec<Op>, &'static str> {
        let buf = match dir {
            Direction::Upload => &mut self.up,
            Direction::Download => &mut self.down,
        };
        buf.extend_from_slice(data);
        let mut packets = Vec::new();
        let mut at = 0;
        while let Some(len) = buf.get(at..at + 4) {
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            if len == 0 || len > MAX_PACKET {
                return Err("an sftp packet length is out of range");
            }
            let Some(packet) = buf.get(at + 4..at + 4 + len) else {
                break;
            };
            packets.push(packet.to_vec());
            at += 4 + len;
        }
        buf.drain(..at);
        let mut ops = Vec::new();
        for p in packets {
            match dir {
                Direction::Upload => self.request(&p, &mut ops),
                Direction::Download => self.response(&p),
            }
        }
        Ok(ops)
    }

    fn request(&mut self, p: &[u8], ops: &mut Vec<Op>) {
        let Some((&kind, rest)) = p.split_first() else {
            return;
        };
        let mut r = Rd(rest);
        let Some(id) = r.u32() else { return };
        match kind {
            FXP_OPEN => {
                if let (Some(path), Some(flags)) = (r.text(), r.u32())
                    && self.opening.len() < 10_000
                {
                    self.opening.insert(id, (path, flags & FXF_WRITE != 0));
                }
            }
            FXP_WRITE => {
                if let (Some(h), Some(_hi), Some(_lo), Some(data)) =
                    (r.string(), r.u32(), r.u32(), r.string())
                    && let Some(f) = self.files.get_mut(h)
                {
                    f.2 += data.len() as u64;
                }
            }
            FXP_READ => {
                if let Some(h) = r.string()
                    && self.reading.len() < 10_000
                {
                    self.reading.insert(id, h.to_vec());
                }
            }
            FXP_CLOSE => {
                if let Some(h) = r.string()
                    && let Some((path, writing, bytes)) = self.files.remove(h)
                {
                    ops.push(if writing {
                        Op::Upload { path, bytes }
                    } else {
                        Op::Download { path, bytes }
                    });
                }
            }
            FXP_REMOVE => ops.extend(r.text().map(|path| Op::Remove { path })),
            FXP_MKDIR => ops.extend(r.text().map(|path| Op::Mkdir { path })),
            FXP_RMDIR => ops.extend(r.text().map(|path| Op::Rmdir { path })),
            FXP_OPENDIR => ops.extend(r.text().map(|path| Op::List { path })),
            FXP_RENAME => {
                if let (Some(from), Some(to)) = (r.text(), r.text()) {
                    ops.push(Op::Rename { from, to });
                }
            }
            _ => {}
        }
    }

    fn response(&mut self, p: &[u8]) {
        let Some((&kind, rest)) = p.split_first() else {
            return;
        };
        let mut r = Rd(rest);
        let Some(id) = r.u32() else { return };
        match kind {
            FXP_HANDLE => {
                if let (Some(h), Some((path, writing))) = (r.string(), self.opening.remove(&id))
                    && self.files.len() < 10_000
                {
                    self.files.insert(h.to_vec(), (path, writing, 0));
                }
            }
            FXP_DATA => {
                if let (Some(data), Some(h)) = (r.string(), self.reading.remove(&id))
                    && let Some(f) = self.files.get_mut(&h)
                {
                    f.2 += data.len() as u64;
                }
            }
            _ => {
                // A status (or anything else) answers the request for good.
                self.opening.remove(&id);
                self.reading.remove(&id);
            }
        }
    }
}

struct Scp {
    /// The direction that carries files and their control lines.
    sending: Direction,
    path: String,
    buf: Vec<u8>,
    /// File bytes (plus the trailing NUL) still to pass before the next line.
    skip: u64,
    dirs: Vec<String>,
}

impl Scp {
    fn feed(&mut self, dir: Direction, data: &[u8]) -> Result<Vec<Op>, &'static str> {
        if dir != self.sending {
            return Ok(Vec::new());
        }
        let mut ops = Vec::new();
        let mut data = data;
        while !data.is_empty() {
            if self.skip > 0 {
                let n = usize::try_from(self.skip)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                self.skip -= n as u64;
                data = &data[n..];
                continue;
            }
            match data.iter().position(|&b| b == b'\n') {
                None => {
                    self.buf.extend_from_slice(data);
                    if self.buf.len() > MAX_LINE {
                        return Err("an scp control line is too long");
                    }
                    return Ok(ops);
                }
                Some(i) => {
                    self.buf.extend_from_slice(&data[..i]);
                    data = &data[i + 1..];
                    let line = String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned();
                    self.line(&line, &mut ops)?;
                }
            }
        }
        Ok(ops)
    }

    fn line(&mut self, line: &str, ops: &mut Vec<Op>) -> Result<(), &'static str> {
        let mut parts = line.splitn(3, ' ');
        let head = parts.next().unwrap_or("");
        match head.chars().next() {
            Some('C') => {
                let size: u64 = parts
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("an scp file line has no size")?;
                let name = parts.next().unwrap_or("").to_owned();
                let path = self.full(&name);
                ops.push(match self.sending {
                    Direction::Upload => Op::Upload { path, bytes: size },
                    Direction::Download => Op::Download { path, bytes: size },
                });
                // The file's bytes, then one NUL.
                self.skip = size.saturating_add(1);
            }
            Some('D') => {
                let name = parts.nth(1).unwrap_or("").to_owned();
                self.dirs.push(name);
            }
            Some('E') => {
                self.dirs.pop();
            }
            // Times, acknowledgements and messages carry no operation.
            _ => {}
        }
        Ok(())
    }

    /// The path a file lands at (upload) or comes from (download).
    fn full(&self, name: &str) -> String {
        let mut p = self.path.clone();
        if self.dirs.is_empty() && !p.ends_with('/') && self.sending == Direction::Download {
            return p;
        }
        for d in &self.dirs {
            p = format!("{}/{d}", p.trim_end_matches('/'));
        }
        if self.dirs.is_empty() {
            // An upload to PATH: a file name, or a directory to put NAME in.
            return if p.ends_with('/') {
                format!("{p}{name}")
            } else {
                p
            };
        }
        format!("{}/{name}", p.trim_end_matches('/'))
    }
}

/// The fuzz entry point: arbitrary bytes through both parsers, split at an
/// arbitrary point between the directions. Nothing may panic. Used by the
/// cargo-fuzz target `ssh_transfer` and by a seeded random test.
pub fn fuzz_transfer(data: &[u8]) {
    let cut = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    for mut t in [
        Transfer::sftp(),
        Transfer::scp("scp -t /tmp/x").unwrap_or_else(Transfer::sftp),
        Transfer::scp("scp -f /tmp/x").unwrap_or_else(Transfer::sftp),
    ] {
        let _ = t.feed(Direction::Upload, &data[..cut]);
        let _ = t.feed(Direction::Download, &data[cut..]);
        let _ = t.feed(Direction::Upload, data);
        let _ = t.filter_upload(data, |x| x.contains('a').then(String::new));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(kind: u8, id: u32, fields: &[&[u8]]) -> Vec<u8> {
        let mut body = vec![kind];
        body.extend_from_slice(&id.to_be_bytes());
        for f in fields {
            body.extend_from_slice(f);
        }
        let mut p = (body.len() as u32).to_be_bytes().to_vec();
        p.extend(body);
        p
    }

    fn s(text: &[u8]) -> Vec<u8> {
        let mut v = (text.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(text);
        v
    }

    #[test]
    fn an_sftp_upload_is_one_operation_with_its_size_even_byte_by_byte() {
        let mut t = Transfer::sftp();
        let mut up = packet(
            FXP_OPEN,
            1,
            &[
                &s(b"/srv/a.txt"),
                &0x1au32.to_be_bytes(),
                &0u32.to_be_bytes(),
            ],
        );
        let handle = s(b"H1");
        let mut down = packet(FXP_HANDLE, 1, &[&handle]);
        up.extend(packet(
            FXP_WRITE,
            2,
            &[
                &handle,
                &0u32.to_be_bytes(),
                &0u32.to_be_bytes(),
                &s(b"hello"),
            ],
        ));
        up.extend(packet(
            FXP_WRITE,
            3,
            &[
                &handle,
                &0u32.to_be_bytes(),
                &5u32.to_be_bytes(),
                &s(b" world"),
            ],
        ));
        let close = packet(FXP_CLOSE, 4, &[&handle]);
        let remove = packet(FXP_REMOVE, 5, &[&s(b"/srv/old.txt")]);
        let rename = packet(FXP_RENAME, 6, &[&s(b"/a"), &s(b"/b")]);
        let mut ops = Vec::new();
        // The open, byte by byte; then the handle; then the rest.
        let (open, writes) = up.split_at(4 + 1 + 4 + 4 + 10 + 4 + 4);
        for b in open {
            ops.extend(t.feed(Direction::Upload, &[*b]));
        }
        ops.extend(t.feed(Direction::Download, &down.split_off(0)));
        ops.extend(t.feed(Direction::Upload, writes));
        ops.extend(t.feed(Direction::Upload, &close));
        ops.extend(t.feed(Direction::Upload, &[remove, rename].concat()));
        assert_eq!(
            ops,
            [
                Op::Upload {
                    path: "/srv/a.txt".into(),
                    bytes: 11
                },
                Op::Remove {
                    path: "/srv/old.txt".into()
                },
                Op::Rename {
                    from: "/a".into(),
                    to: "/b".into()
                },
            ]
        );
        assert_eq!(ops[0].to_string(), "upload path=\"/srv/a.txt\" bytes=11");
    }

    #[test]
    fn legacy_scp_lines_name_files_and_sizes() {
        let mut t = Transfer::scp("scp -t /srv/in/").unwrap();
        let mut ops = t.feed(Direction::Upload, b"C0644 5 a.txt\nhello\0C0600 3 b.bin\n");
        ops.extend(t.feed(Direction::Upload, b"xyz\0"));
        ops.extend(t.feed(Direction::Download, b"\0\0\0"));
        assert_eq!(
            ops,
            [
                Op::Upload {
                    path: "/srv/in/a.txt".into(),
                    bytes: 5
                },
                Op::Upload {
                    path: "/srv/in/b.bin".into(),
                    bytes: 3
                },
            ]
        );
        let mut t = Transfer::scp("scp -f /srv/out.txt").unwrap();
        let ops = t.feed(Direction::Download, b"C0644 12 out.txt\npayload 123\n\0");
        assert_eq!(
            ops,
            [Op::Download {
                path: "/srv/out.txt".into(),
                bytes: 12
            }]
        );
        assert!(Transfer::scp("echo scp -t").is_none());
        assert!(Transfer::scp("scp /a /b").is_none());
    }

    #[test]
    fn absurd_lengths_stop_extraction_once_without_buffering() {
        let mut t = Transfer::sftp();
        let ops = t.feed(Direction::Upload, &[0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
        assert_eq!(
            ops,
            [Op::Unreadable {
                why: "an sftp packet length is out of range"
            }]
        );
        assert!(t.feed(Direction::Upload, &[0; 100]).is_empty());
        let mut t = Transfer::scp("scp -t /x").unwrap();
        let ops = t.feed(Direction::Upload, &[b'C'; MAX_LINE + 10]);
        assert_eq!(ops.len(), 1);
    }

    #[test]
    fn refused_requests_are_answered_here_and_never_forwarded() {
        let mut t = Transfer::sftp();
        let remove = packet(FXP_REMOVE, 9, &[&s(b"/etc/passwd")]);
        let mkdir = packet(FXP_MKDIR, 10, &[&s(b"/tmp/ok"), &0u32.to_be_bytes()]);
        let both = [remove.clone(), mkdir.clone()].concat();
        let judge = |text: &str| {
            text.starts_with("sftp remove /etc/")
                .then(|| "no deletes under /etc".to_owned())
        };
        // Half a packet waits; nothing is forwarded early.
        let first = t.filter_upload(&both[..5], judge).unwrap();
        assert!(first.forward.is_empty() && first.reply.is_empty());
        let rest = t.filter_upload(&both[5..], judge).unwrap();
        assert_eq!(rest.forward, mkdir);
        assert_eq!(&rest.reply[4..5], &[FXP_STATUS]);
        assert_eq!(&rest.reply[5..9], &9u32.to_be_bytes());
        assert_eq!(&rest.reply[9..13], &FX_PERMISSION_DENIED.to_be_bytes());
        assert_eq!(
            rest.ops,
            [
                Op::Denied {
                    request: "sftp remove /etc/passwd".into(),
                    reason: "no deletes under /etc".into()
                },
                Op::Mkdir {
                    path: "/tmp/ok".into()
                },
            ]
        );
        // A stream that cannot be followed cannot be policed.
        assert!(t.filter_upload(&[0xff; 8], judge).is_err());
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..5000 {
            let len = (state % 300) as usize;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            fuzz_transfer(&data);
        }
    }
}
