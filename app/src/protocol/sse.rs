//! Server-Sent Events framing: the encoder the server writes with and the incremental parser
//! the browser client, the tests and the load tool read with.
//!
//! **Invariant:** [`SseFrame::encode`] never lets a field value start a new line, so no value
//! can inject a field; [`SseParser`] yields the same frames whatever the chunk boundaries.
//! Pure code: no I/O, no Leptos, no `web_sys`.

/// One dispatched event of an SSE stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseFrame {
    /// The `id:` of this frame, when it had one.
    pub id: Option<String>,
    /// The `event:` name; `message` when the frame had none, as the SSE standard says.
    pub event: String,
    /// The `data:` lines joined by `\n`.
    pub data: String,
    /// The `retry:` of this frame in milliseconds, when it had one.
    pub retry: Option<u64>,
}

/// The event name of a frame that has no `event:` line.
pub const DEFAULT_EVENT: &str = "message";

impl SseFrame {
    /// A frame with an event name and data, without id.
    pub fn new(event: impl Into<String>, data: impl Into<String>) -> Self {
        Self {
            id: None,
            event: event.into(),
            data: data.into(),
            retry: None,
        }
    }

    /// The same frame with an `id:`.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The frame as SSE text, ending with the blank line that dispatches it.
    ///
    /// CR and LF are removed from `id` and `event` (NUL too from `id`), and `data` is written
    /// as one `data:` line per line it holds, so a value can never add a field.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(self.data.len() + self.event.len() + 48);
        if let Some(id) = &self.id {
            out.push_str("id: ");
            out.extend(id.chars().filter(|c| !matches!(c, '\r' | '\n' | '\0')));
            out.push('\n');
        }
        if !self.event.is_empty() && self.event != DEFAULT_EVENT {
            out.push_str("event: ");
            out.extend(self.event.chars().filter(|c| !matches!(c, '\r' | '\n')));
            out.push('\n');
        }
        if let Some(retry) = self.retry {
            out.push_str("retry: ");
            out.push_str(&retry.to_string());
            out.push('\n');
        }
        for line in split_lines(&self.data) {
            out.push_str("data: ");
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
        out
    }
}

/// Splits on `\r\n`, `\r` and `\n`, the three line ends of SSE; always yields one line at least.
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.find(['\r', '\n']) {
            Some(end) => {
                let skip = if current[end..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                rest = Some(&current[end + skip..]);
                Some(&current[..end])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// An incremental SSE parser: feed it bytes as they arrive, get the frames they complete.
///
/// Follows the event-stream interpretation of the HTML standard: `\r\n`, `\r` and `\n` end
/// lines, comments (`:`) are skipped, a blank line dispatches a frame that has data, and the
/// last event id persists across frames.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the line being read; a line is decoded only once complete, so a UTF-8
    /// character split between chunks is decoded whole.
    line: Vec<u8>,
    /// The previous byte was `\r`: a `\n` right after it ends nothing.
    after_cr: bool,
    /// The UTF-8 byte order mark at the very start has been dealt with.
    started: bool,
    event: String,
    data: String,
    has_data: bool,
    frame_id: Option<String>,
    frame_retry: Option<u64>,
    last_event_id: Option<String>,
    retry: Option<u64>,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `bytes`, returning every frame they complete, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseFrame> {
        let mut frames = Vec::new();
        let mut bytes = bytes;
        if !self.started {
            let bom = [0xEF, 0xBB, 0xBF];
            let seen = self.line.len() + bytes.len();
            if seen < bom.len() && bom.starts_with(&[self.line.as_slice(), bytes].concat()) {
                self.line.extend_from_slice(bytes);
                return frames;
            }
            self.started = true;
            let mut head = std::mem::take(&mut self.line);
            head.extend_from_slice(bytes);
            let head = head.strip_prefix(&bom).map(<[u8]>::to_vec).unwrap_or(head);
            self.feed(&head, &mut frames);
            return frames;
        }
        while let Some(position) = bytes.iter().position(|b| matches!(b, b'\r' | b'\n')) {
            let (line, rest) = bytes.split_at(position);
            if self.after_cr && line.is_empty() && rest[0] == b'\n' {
                self.after_cr = false;
                bytes = &rest[1..];
                continue;
            }
            self.after_cr = rest[0] == b'\r';
            if self.line.is_empty() {
                // The whole line is in this chunk, as nearly every line is: no copy.
                self.process_line(line, &mut frames);
            } else {
                let mut whole = std::mem::take(&mut self.line);
                whole.extend_from_slice(line);
                self.process_line(&whole, &mut frames);
                whole.clear();
                self.line = whole;
            }
            bytes = &rest[1..];
        }
        if !bytes.is_empty() {
            self.after_cr = false;
            self.line.extend_from_slice(bytes);
        }
        frames
    }

    fn feed(&mut self, bytes: &[u8], frames: &mut Vec<SseFrame>) {
        frames.extend(self.push(bytes));
    }

    /// The id of the last frame that had one (the `Last-Event-ID` to reconnect with).
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// The last `retry:` the stream sent, in milliseconds.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    fn process_line(&mut self, line: &[u8], frames: &mut Vec<SseFrame>) {
        if line.is_empty() {
            self.dispatch(frames);
            return;
        }
        if line[0] == b':' {
            return;
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => {
                self.frame_id = Some(value.to_owned());
                // The last id's buffer is reused: a frame's id costs one allocation, not two.
                match &mut self.last_event_id {
                    Some(last) => value.clone_into(last),
                    None => self.last_event_id = Some(value.to_owned()),
                }
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(retry) = value.parse() {
                    self.retry = Some(retry);
                    self.frame_retry = Some(retry);
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, frames: &mut Vec<SseFrame>) {
        let event = std::mem::take(&mut self.event);
        let id = self.frame_id.take();
        let retry = self.frame_retry.take();
        if !std::mem::take(&mut self.has_data) {
            return;
        }
        frames.push(SseFrame {
            id,
            event: if event.is_empty() {
                DEFAULT_EVENT.to_owned()
            } else {
                event
            },
            data: std::mem::take(&mut self.data),
            retry,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(id: Option<&str>, event: &str, data: &str) -> SseFrame {
        SseFrame {
            id: id.map(str::to_owned),
            event: event.to_owned(),
            data: data.to_owned(),
            retry: None,
        }
    }

    #[test]
    fn encodes_the_api_md_layout() {
        let encoded = frame(Some("e1:7"), "entity.updated", r#"{"a":1}"#).encode();
        assert_eq!(
            encoded,
            "id: e1:7\nevent: entity.updated\ndata: {\"a\":1}\n\n"
        );
    }

    #[test]
    fn no_value_can_inject_a_field() {
        let hostile = frame(
            Some("1\r\nevent: evil"),
            "x\nid: 99",
            "line one\r\nid: 666\revent: evil\n\ndata: two",
        );
        let frames = SseParser::new().push(hostile.encode().as_bytes());
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(frames[0].id.as_deref(), Some("1event: evil"));
        assert_eq!(frames[0].event, "xid: 99");
        assert_eq!(
            frames[0].data,
            "line one\nid: 666\nevent: evil\n\ndata: two"
        );
    }

    #[test]
    fn round_trips_at_every_split_point() {
        let frames = vec![
            frame(None, "connected", r#"{"connectionId":"c","projectId":"p"}"#),
            frame(
                Some("ab:1"),
                "entity.created",
                "{\"title\":\"caf\u{e9} \u{1f600}\"}",
            ),
            frame(None, "heartbeat", r#"{"timestamp":"t"}"#),
            frame(Some("ab:2"), "entity.deleted", "two\nlines"),
        ];
        let text: String = frames.iter().map(SseFrame::encode).collect();
        let bytes = text.as_bytes();
        for split in 0..=bytes.len() {
            let mut parser = SseParser::new();
            let mut parsed = parser.push(&bytes[..split]);
            parsed.extend(parser.push(&bytes[split..]));
            assert_eq!(parsed, frames, "split at byte {split}");
            assert_eq!(parser.last_event_id(), Some("ab:2"));
        }
    }

    #[test]
    fn byte_by_byte_feeding_yields_the_same_frames() {
        let text = "retry: 1500\r\n: comment\r\nevent: a\r\ndata: 1\r\n\r\ndata: 2\r\rdata:3\n\n";
        let mut parser = SseParser::new();
        let parsed: Vec<SseFrame> = text.bytes().flat_map(|byte| parser.push(&[byte])).collect();
        let mut first = frame(None, "a", "1");
        first.retry = Some(1500);
        assert_eq!(
            parsed,
            vec![
                first,
                frame(None, "message", "2"),
                frame(None, "message", "3")
            ]
        );
        assert_eq!(parser.retry(), Some(1500));
    }

    #[test]
    fn follows_the_standard_on_odd_lines() {
        let text = "\u{feff}data\n\nevent: lonely\n\nid: 5\ndata: x\n\nid\ndata:  two spaces\n\nid: a\0b\ndata: y\n\nretry: soon\ndata: z\n\n";
        let mut parser = SseParser::new();
        let parsed = parser.push(text.as_bytes());
        assert_eq!(
            parsed,
            vec![
                frame(None, "message", ""),
                frame(Some("5"), "message", "x"),
                frame(Some(""), "message", " two spaces"),
                frame(None, "message", "y"),
                frame(None, "message", "z"),
            ]
        );
        assert_eq!(parser.last_event_id(), Some(""));
        assert_eq!(parser.retry(), None);
    }

    #[test]
    fn a_byte_order_mark_split_across_chunks_is_skipped() {
        let mut parser = SseParser::new();
        let mut parsed = parser.push(&[0xEF]);
        parsed.extend(parser.push(&[0xBB]));
        parsed.extend(parser.push(&[0xBF, b'd', b'a']));
        parsed.extend(parser.push(b"ta: ok\n\n"));
        assert_eq!(parsed, vec![frame(None, "message", "ok")]);
    }
}
