//! A client of the SSH agent (draft-miller-ssh-agent): list its keys, ask it to sign. On Unix
//! the agent listens on the socket `SSH_AUTH_SOCK` names; on Windows OpenSSH's agent service
//! listens on the named pipe `\\.\pipe\openssh-ssh-agent` (or the pipe `SSH_AUTH_SOCK` names).

use std::io::{self, Read, Write};

const FAILURE: u8 = 5;
const REQUEST_IDENTITIES: u8 = 11;
const IDENTITIES_ANSWER: u8 = 12;
const SIGN_REQUEST: u8 = 13;
const SIGN_RESPONSE: u8 = 14;
/// Ask for an `rsa-sha2-512` signature from an RSA key (as ssh-keygen does for SSHSIG).
pub const RSA_SHA2_512: u32 = 4;

/// A key the agent holds: its public key blob (SSH wire format) and comment.
pub struct Identity {
    pub blob: Vec<u8>,
    pub comment: String,
}

pub struct Agent {
    stream: Box<dyn Stream>,
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

impl Agent {
    /// The agent of this session, if one can be reached: `Ok(None)` when none is configured.
    pub fn connect() -> io::Result<Option<Agent>> {
        let named = std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty());
        #[cfg(unix)]
        {
            let Some(path) = named else { return Ok(None) };
            let stream = std::os::unix::net::UnixStream::connect(path)?;
            Ok(Some(Agent { stream: Box::new(stream) }))
        }
        #[cfg(windows)]
        {
            let pipe = named.unwrap_or_else(|| r"\\.\pipe\openssh-ssh-agent".into());
            match std::fs::OpenOptions::new().read(true).write(true).open(&pipe) {
                Ok(file) => Ok(Some(Agent { stream: Box::new(file) })),
                // The agent service is not running: no agent, as on Unix without the variable.
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        }
    }

    fn request(&mut self, message: &[u8]) -> io::Result<Vec<u8>> {
        let len = u32::try_from(message.len()).map_err(|_| io::Error::other("agent request too long"))?;
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(message);
        self.stream.write_all(&framed)?;
        self.stream.flush()?;
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if len > 256 * 1024 {
            return Err(io::Error::other("the agent's answer is too long"));
        }
        let mut answer = vec![0u8; len];
        self.stream.read_exact(&mut answer)?;
        Ok(answer)
    }

    pub fn identities(&mut self) -> io::Result<Vec<Identity>> {
        let answer = self.request(&[REQUEST_IDENTITIES])?;
        let mut r = Reader(&answer);
        if r.byte()? != IDENTITIES_ANSWER {
            return Err(io::Error::other("the agent refused to list its keys"));
        }
        let count = r.u32()?;
        let mut out = Vec::new();
        for _ in 0..count {
            let blob = r.string()?.to_vec();
            let comment = String::from_utf8_lossy(r.string()?).into_owned();
            out.push(Identity { blob, comment });
        }
        Ok(out)
    }

    /// The agent's signature (SSH wire format: algorithm name, then the signature) of `data`.
    pub fn sign(&mut self, key_blob: &[u8], data: &[u8], flags: u32) -> io::Result<Vec<u8>> {
        let mut message = vec![SIGN_REQUEST];
        put_string(&mut message, key_blob)?;
        put_string(&mut message, data)?;
        message.extend_from_slice(&flags.to_be_bytes());
        let answer = self.request(&message)?;
        let mut r = Reader(&answer);
        match r.byte()? {
            SIGN_RESPONSE => Ok(r.string()?.to_vec()),
            FAILURE => {
                Err(io::Error::other("the agent refused to sign (a key that asks for confirmation was denied?)"))
            }
            other => Err(io::Error::other(format!("the agent answered with message {other}"))),
        }
    }
}

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(|_| io::Error::other("too long for the agent"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(io::Error::other("the agent's answer is cut short"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn byte(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> io::Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> io::Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}
