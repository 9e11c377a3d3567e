//! Requests written by hand on their own TCP connection (`Connection: close`), so an attack
//! controls every byte and every pause, and the answer is read until the server closes.
//!
//! **Invariant:** an answer is read whole but never past [`MAX_ANSWER`] bytes, and never for
//! longer than the caller's limit.

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::connection::{self, ServerTarget};

/// Most bytes of an answer kept.
pub const MAX_ANSWER: usize = 1024 * 1024;

/// An HTTP answer: its status, its head and its body as text.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code of the status line.
    pub status: u16,
    /// The status line and the headers.
    head: String,
    /// What followed the head.
    pub body: String,
}

impl Answer {
    /// Parses what the server sent on a closed connection.
    ///
    /// # Errors
    ///
    /// It is not an HTTP/1.x answer.
    pub fn parse(bytes: &[u8]) -> anyhow::Result<Self> {
        let text = String::from_utf8_lossy(bytes);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .strip_prefix("HTTP/1.")
            .and_then(|rest| rest.get(2..5))
            .and_then(|code| code.parse().ok())
            .with_context(|| format!("not an HTTP answer: {:?}", truncate(&text, 80)))?;
        Ok(Self {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        })
    }

    /// The value of header `name` (case-insensitive), if the answer has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

fn truncate(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

/// Sends `request` (a whole request, head and body) on a new connection from `source` and
/// reads the answer until the server closes, at most `limit`.
///
/// # Errors
///
/// Connecting, writing or reading failed, the limit passed, or the answer is not HTTP.
pub async fn exchange(
    target: &ServerTarget,
    source: Option<Ipv4Addr>,
    request: &[u8],
    limit: Duration,
) -> anyhow::Result<Answer> {
    tokio::time::timeout(limit, async {
        let mut tcp = connection::connect(target, source).await?;
        tcp.write_all(request).await.context("cannot send")?;
        read_answer(&mut tcp).await
    })
    .await
    .with_context(|| format!("no whole answer within {limit:?}"))?
}

/// Reads until the server closes `tcp` and parses what it sent.
///
/// # Errors
///
/// Reading failed before anything arrived, or what arrived is not HTTP.
pub async fn read_answer(tcp: &mut TcpStream) -> anyhow::Result<Answer> {
    let mut bytes = Vec::new();
    let mut buffer = [0_u8; 16 * 1024];
    loop {
        match tcp.read(&mut buffer).await {
            Ok(0) => break,
            Ok(read) => {
                bytes.extend_from_slice(&buffer[..read]);
                if bytes.len() >= MAX_ANSWER {
                    break;
                }
            }
            // A reset after the answer (the server closed with our bytes unread) ends it.
            Err(_) if !bytes.is_empty() => break,
            Err(error) => return Err(error).context("cannot read the answer"),
        }
    }
    if bytes.is_empty() {
        bail!("the server closed the connection without an answer");
    }
    Answer::parse(&bytes)
}

/// A `Connection: close` request head for `method path` with `headers`, and the body length
/// when there is a body.
pub fn head(
    target: &ServerTarget,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    content_length: Option<u64>,
) -> String {
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        target.path(path),
        target.authority
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(length) = content_length {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    head.push_str("\r\n");
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_gives_its_status_headers_and_body() {
        let answer = Answer::parse(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\ncontent-type: application/json\r\n\r\n{\"error\":{}}",
        )
        .expect("an answer");
        assert_eq!(answer.status, 429);
        assert_eq!(answer.header("retry-after"), Some("3"));
        assert_eq!(answer.header("Content-Type"), Some("application/json"));
        assert_eq!(answer.body, "{\"error\":{}}");
        assert!(Answer::parse(b"SSH-2.0-OpenSSH").is_err());
        assert!(Answer::parse(b"HTTP/1.1 2").is_err());
    }
}
